/* cv_check_families.h -- X-macro list of op families with checks.
 * Each CV_FAMILY(f) needs cv_f_gradcheck(cv_check*) and
 * cv_f_devcheck(cv_check*, cv_ctx*) in src/check/cv_check_f.c. */
CV_FAMILY(util)
CV_FAMILY(conv)
CV_FAMILY(bcast)
CV_FAMILY(elem)
CV_FAMILY(vae)
CV_FAMILY(reduce)
CV_FAMILY(optim)
CV_FAMILY(pk)
