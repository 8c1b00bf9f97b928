/* Plain C references in double precision, written for clarity, never for speed. Every kernel's
 * test compares against one of these, never against another kernel of ours. */
#ifndef SPARTAN_TEST_REF_H
#define SPARTAN_TEST_REF_H

#include <stddef.h>

/* x[i] = value */
void ref_fill(double *x, size_t n, double value);

/* out[i] = a * x[i] + y[i] */
void ref_axpy(double *out, const float *y, const float *x, size_t n, float a);

#endif /* SPARTAN_TEST_REF_H */
