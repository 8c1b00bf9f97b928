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
