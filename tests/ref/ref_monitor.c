/* References for the sparsity monitor (kernels_cl/monitor.cl): ReLU and non-zero counts. */
#include "ref/ref.h"

void ref_relu(float *y, const float *z, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = z[i] > 0.0f ? z[i] : 0.0f;
}

size_t ref_nonzeros(const float *x, size_t n) {
    size_t nz = 0;
    for (size_t i = 0; i < n; i++) nz += x[i] != 0.0f;
    return nz;
}

void ref_tile_counts(unsigned *counts, const float *x, size_t rows, size_t cols, size_t tile_rows,
                     size_t tile_cols) {
    size_t tiles_r = (rows + tile_rows - 1) / tile_rows;
    size_t tiles_c = (cols + tile_cols - 1) / tile_cols;
    for (size_t t = 0; t < tiles_r * tiles_c; t++) counts[t] = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            if (x[r * cols + c] != 0.0f) counts[(r / tile_rows) * tiles_c + c / tile_cols]++;
}
