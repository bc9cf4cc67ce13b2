# CV_WARNINGS -- warning flags the compiler accepts, in CV_WARN_CFLAGS.
AC_DEFUN([CV_WARNINGS], [
  CV_WARN_CFLAGS=
  for cv_flag in -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
                 -Wno-unused-parameter -Wno-overlength-strings; do
    AX_CHECK_COMPILE_FLAG([$cv_flag], [CV_WARN_CFLAGS="$CV_WARN_CFLAGS $cv_flag"], [], [-Werror])
  done
  AC_SUBST([CV_WARN_CFLAGS])
])
