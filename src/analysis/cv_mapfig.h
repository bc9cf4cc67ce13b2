/* cv_mapfig.h -- figures of field maps with PLplot (cairo PNG driver):
 * a grid with one row per map and one column per field, each field in a
 * colour map suited to it (log10 values; the colour range shared down a
 * column so rows compare), each column with a colour bar.  This is the
 * paper's Figure 2 when the rows are generated and real maps. */
#ifndef CV_MAPFIG_H
#define CV_MAPFIG_H

#include "model/cv_sample.h"

/* rows[r]: (C, S, S) physical units (log10 is shown for log10 channels);
 * row_labels[r]: a label drawn left of the row.  Written atomically. */
cv_status cv_mapfig_write(const char *path, const char *title, int n_rows, const char *const *row_labels,
                          const cv_norm *norm, int size, const float *const *rows);

/* Generated maps (top rows) above real ones (bottom rows), n of each. */
cv_status cv_plot_real_vs_generated(const char *path, const cv_norm *norm, int size, const float *real,
                                    const float *gen, int n);

#endif
