# CV_CHECK_OPENCL -- find the OpenCL ICD loader and headers.
# pkg-config first; if that fails, a plain library search, as for vendor SDKs
# that ship libOpenCL.so without a .pc file.  Sets OPENCL_CFLAGS, OPENCL_LIBS.
AC_DEFUN([CV_CHECK_OPENCL], [
  AC_ARG_VAR([OPENCL_CFLAGS], [C compiler flags for OpenCL])
  AC_ARG_VAR([OPENCL_LIBS], [linker flags for OpenCL])
  PKG_CHECK_MODULES([OPENCL], [OpenCL], [], [
    cv_save_LIBS=$LIBS
    AC_SEARCH_LIBS([clGetPlatformIDs], [OpenCL], [
      AS_IF([test "x$ac_cv_search_clGetPlatformIDs" != "xnone required"],
            [OPENCL_LIBS=$ac_cv_search_clGetPlatformIDs])
    ], [AC_MSG_ERROR([OpenCL ICD loader not found.
  On Debian/Ubuntu: apt-get install ocl-icd-opencl-dev opencl-headers
  (and a device: pocl-opencl-icd for CPUs, or your GPU vendor's driver).
  Or set OPENCL_CFLAGS and OPENCL_LIBS.])])
    LIBS=$cv_save_LIBS
  ])
  cv_save_CPPFLAGS=$CPPFLAGS
  CPPFLAGS="$OPENCL_CFLAGS $CPPFLAGS"
  AC_CHECK_HEADER([CL/cl.h], [], [AC_MSG_ERROR([OpenCL headers (CL/cl.h) not found.
  On Debian/Ubuntu: apt-get install opencl-headers])])
  CPPFLAGS=$cv_save_CPPFLAGS
  AC_DEFINE([CL_TARGET_OPENCL_VERSION], [120], [OpenCL API version we target])
  AC_DEFINE([CL_USE_DEPRECATED_OPENCL_1_2_APIS], [1], [Allow OpenCL 1.2 entry points])
])

# CV_CHECK_PKG(VAR, MODULES, DEBIAN-PACKAGE, HEADER)
# pkg-config check whose failure names the Debian package that provides it.
AC_DEFUN([CV_CHECK_PKG], [
  PKG_CHECK_MODULES([$1], [$2], [], [AC_MSG_ERROR([$2 not found (pkg-config).
  On Debian/Ubuntu: apt-get install $3
  Or set $1_CFLAGS and $1_LIBS.])])
  cv_save_CPPFLAGS=$CPPFLAGS
  CPPFLAGS="$$1_CFLAGS $OPENCL_CFLAGS $CPPFLAGS"
  AC_CHECK_HEADER([$4], [], [AC_MSG_ERROR([$4 not found.  On Debian/Ubuntu: apt-get install $3])],
                  [#include "confdefs.h"])
  CPPFLAGS=$cv_save_CPPFLAGS
])
