// Element-wise kernels over flat float buffers: fill, and y += a * x (SGD updates, gradient
// accumulation). Each work-item handles SP_VEC consecutive elements; the last, partial chunk is
// done element by element, so any n works.

__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void eltwise_fill(__global float *x, const uint n, const float value) {
    const uint i = get_global_id(0);
    const uint start = i * SP_VEC;
    if (start + SP_VEC <= n) {
        VSTOREV((floatv)(value), i, x);
    } else {
        for (uint j = start; j < n; j++) x[j] = value;
    }
}

__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void eltwise_axpy(__global float *y, __global const float *x, const uint n, const float a) {
    const uint i = get_global_id(0);
    const uint start = i * SP_VEC;
    if (start + SP_VEC <= n) {
        VSTOREV((floatv)(a) * VLOADV(i, x) + VLOADV(i, y), i, y);
    } else {
        for (uint j = start; j < n; j++) y[j] = a * x[j] + y[j];
    }
}

// y = max(x, 0), NaN kept (a NaN is not below 0). y may be x.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void eltwise_relu(__global const float *x, __global float *y, const uint n) {
    const uint i = get_global_id(0);
    const uint start = i * SP_VEC;
    if (start + SP_VEC <= n) {
        const floatv v = VLOADV(i, x);
        VSTOREV(select(v, (floatv)(0.0f), v < (floatv)(0.0f)), i, y);
    } else {
        for (uint j = start; j < n; j++) y[j] = x[j] < 0.0f ? 0.0f : x[j];
    }
}

// c = alpha * (the sum of parts slices of n elements of partial) + beta * c: the second step of
// a reduction cut into slices (the GEMMs' split reductions, the bias gradient). beta == 0
// ignores c's old contents. The slices are added in order: the result is deterministic.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void eltwise_sum_parts(const uint n, const uint parts, __global const float *partial,
                       const float alpha, const float beta, __global float *c) {
    const uint i = get_global_id(0);
    if (i >= n) return;
    float s = 0.0f;
    for (uint p = 0; p < parts; p++) s += partial[(size_t)p * n + i];
    c[i] = beta != 0.0f ? fma(beta, c[i], alpha * s) : alpha * s;
}

// c = beta * c (0 when beta is 0, whatever c held).
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void eltwise_scale(const uint n, const float beta, __global float *c) {
    const uint i = get_global_id(0);
    if (i < n) c[i] = beta == 0.0f ? 0.0f : beta * c[i];
}

// out (cols x rows) = in^T (in: rows x cols). One work-item per element.
__kernel void eltwise_transpose(const uint rows, const uint cols, __global const float *in,
                                __global float *out) {
    const uint j = get_global_id(0), i = get_global_id(1);
    if (i < rows && j < cols) out[(size_t)j * rows + i] = in[(size_t)i * cols + j];
}

// x = 0 where mask == 0 (mask n elements of another matrix of the same shape): the masked
// backward-by-input computed densely (the fallback when the sparse kernels are off).
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void eltwise_mask_zeros(__global float *x, __global const float *mask, const uint n) {
    const uint i = get_global_id(0);
    if (i < n && mask[i] == 0.0f) x[i] = 0.0f;
}
