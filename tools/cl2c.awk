# cl2c.awk -- embed OpenCL C sources as arrays of line strings (pure ISO C).
# Usage: awk -f tools/cl2c.awk cl/a.clh cl/b.cl ... > src/runtime/cv_cl_sources.c
# Each file becomes `static const char *const cv_cl_src_<name>[]`, led by a
# #line directive so that build logs name the .cl file and line.  The table
# cv_cl_sources[] lists them in the order given (headers, *.clh, first).
function flush() {
    if (name != "") { printf "};\n"; n[nf] = lines }
}
FNR == 1 {
    flush()
    file = FILENAME; sub(/.*\//, "", file)
    name = file; sub(/\.[^.]*$/, "", name); gsub(/[^A-Za-z0-9_]/, "_", name)
    nf++; names[nf] = name; files[nf] = file
    printf "static const char *const cv_cl_src_%s[] = {\n", name
    printf "    \"#line 1 \\\"%s\\\"\\n\",\n", file
    lines = 1
}
{
    s = $0
    gsub(/\\/, "&&", s)
    gsub(/"/, "\\\"", s)
    printf "    \"%s\\n\",\n", s
    lines++
}
END {
    flush()
    printf "const cv_cl_source cv_cl_sources[] = {\n"
    for (i = 1; i <= nf; i++)
        printf "    { \"%s\", cv_cl_src_%s, %d },\n", files[i], names[i], n[i]
    printf "};\nconst int cv_cl_n_sources = %d;\n", nf
}
