/* Device profiles: the driver's answers, and vendor classification. The only file that knows
 * how vendors spell their names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/device_internal.h"

static const char *vendor_names[] = {
#define X(name, text) text,
    SPARTAN_VENDOR_MAP(X)
#undef X
};

const char *spartan_vendor_name(spartan_vendor vendor) {
    if ((unsigned)vendor >= SPARTAN_VENDOR_COUNT_) return "unknown";
    return vendor_names[vendor];
}

static int has(const char *haystack, const char *needle) {
    return strstr(haystack, needle) != NULL;
}

static spartan_vendor classify(const spartan_device_info *d) {
    /* The platform decides for CPU runtimes and simulators: POCL reports the CPU maker as the
     * device vendor, which says nothing about how kernels are compiled. */
    if (has(d->platform_name, "Portable Computing Language") || has(d->platform_vendor, "pocl"))
        return SPARTAN_VENDOR_POCL;
    if (has(d->platform_name, "Oclgrind")) return SPARTAN_VENDOR_SIMULATOR;
    const char *v = d->vendor_string;
    if (has(v, "NVIDIA")) return SPARTAN_VENDOR_NVIDIA;
    if (has(v, "Advanced Micro Devices") || has(v, "AMD") || has(v, "AuthenticAMD"))
        return SPARTAN_VENDOR_AMD;
    if (has(v, "Intel") || has(v, "GenuineIntel")) return SPARTAN_VENDOR_INTEL;
    if (has(v, "Apple")) return SPARTAN_VENDOR_APPLE;
    if (has(v, "Qualcomm") || has(v, "QUALCOMM")) return SPARTAN_VENDOR_QUALCOMM;
    if (has(v, "ARM") || has(v, "Arm")) return SPARTAN_VENDOR_ARM;
    return SPARTAN_VENDOR_OTHER;
}

static void str_info(cl_device_id dev, cl_device_info what, char *buf, size_t len) {
    buf[0] = '\0';
    if (clGetDeviceInfo(dev, what, len, buf, NULL) != CL_SUCCESS) buf[0] = '\0';
    buf[len - 1] = '\0';
}

static void plat_info(cl_platform_id p, cl_platform_info what, char *buf, size_t len) {
    buf[0] = '\0';
    if (clGetPlatformInfo(p, what, len, buf, NULL) != CL_SUCCESS) buf[0] = '\0';
    buf[len - 1] = '\0';
}

static cl_ulong ulong_info(cl_device_id dev, cl_device_info what) {
    cl_ulong v = 0;
    clGetDeviceInfo(dev, what, sizeof v, &v, NULL);
    return v;
}

static cl_uint uint_info(cl_device_id dev, cl_device_info what) {
    cl_uint v = 0;
    clGetDeviceInfo(dev, what, sizeof v, &v, NULL);
    return v;
}

static char *extensions(cl_device_id dev) {
    size_t n = 0;
    if (clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, 0, NULL, &n) != CL_SUCCESS || n == 0)
        return NULL;
    char *s = malloc(n + 1);
    if (!s) return NULL;
    if (clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, n, s, NULL) != CL_SUCCESS) {
        free(s);
        return NULL;
    }
    s[n] = '\0';
    return s;
}

void sp_device_profile(cl_platform_id platform, cl_device_id dev, unsigned platform_index,
                       unsigned device_index, spartan_device_info *d) {
    memset(d, 0, sizeof *d);
    d->platform_index = platform_index;
    d->device_index = device_index;
    plat_info(platform, CL_PLATFORM_NAME, d->platform_name, sizeof d->platform_name);
    plat_info(platform, CL_PLATFORM_VENDOR, d->platform_vendor, sizeof d->platform_vendor);
    plat_info(platform, CL_PLATFORM_VERSION, d->platform_version, sizeof d->platform_version);
    str_info(dev, CL_DEVICE_NAME, d->name, sizeof d->name);
    str_info(dev, CL_DEVICE_VENDOR, d->vendor_string, sizeof d->vendor_string);
    str_info(dev, CL_DEVICE_VERSION, d->device_version, sizeof d->device_version);
    str_info(dev, CL_DRIVER_VERSION, d->driver_version, sizeof d->driver_version);
    str_info(dev, CL_DEVICE_OPENCL_C_VERSION, d->opencl_c_version, sizeof d->opencl_c_version);
    d->vendor = classify(d);

    cl_device_type t = 0;
    clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof t, &t, NULL);
    if (t & CL_DEVICE_TYPE_CPU) d->type |= SPARTAN_DEVICE_CPU;
    if (t & CL_DEVICE_TYPE_GPU) d->type |= SPARTAN_DEVICE_GPU;
    if (t & CL_DEVICE_TYPE_ACCELERATOR) d->type |= SPARTAN_DEVICE_ACCELERATOR;
    if (!d->type) d->type = SPARTAN_DEVICE_OTHER;

    unsigned major = 1, minor = 0;
    if (sscanf(d->opencl_c_version, "OpenCL C %u.%u", &major, &minor) == 2) {
        d->opencl_c_major = major;
        d->opencl_c_minor = minor;
    }

    d->compute_units = uint_info(dev, CL_DEVICE_MAX_COMPUTE_UNITS);
    d->clock_mhz = uint_info(dev, CL_DEVICE_MAX_CLOCK_FREQUENCY);
    d->global_mem_bytes = ulong_info(dev, CL_DEVICE_GLOBAL_MEM_SIZE);
    d->local_mem_bytes = ulong_info(dev, CL_DEVICE_LOCAL_MEM_SIZE);
    d->max_alloc_bytes = ulong_info(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
    cl_device_local_mem_type lt = CL_GLOBAL;
    clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_TYPE, sizeof lt, &lt, NULL);
    d->local_mem_dedicated = lt == CL_LOCAL;
    clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof d->max_work_group_size,
                    &d->max_work_group_size, NULL);
    d->max_work_item_dims = uint_info(dev, CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS);
    size_t sizes[16] = {0};
    clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof sizes, sizes, NULL);
    for (int i = 0; i < 3; i++) d->max_work_item_sizes[i] = sizes[i];
    d->preferred_vector_width_float = uint_info(dev, CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT);
    d->native_vector_width_float = uint_info(dev, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT);
    d->preferred_vector_width_int = uint_info(dev, CL_DEVICE_PREFERRED_VECTOR_WIDTH_INT);
    d->address_bits = uint_info(dev, CL_DEVICE_ADDRESS_BITS);
    cl_bool b = CL_FALSE;
    clGetDeviceInfo(dev, CL_DEVICE_AVAILABLE, sizeof b, &b, NULL);
    d->available = b == CL_TRUE;
    b = CL_FALSE;
    clGetDeviceInfo(dev, CL_DEVICE_COMPILER_AVAILABLE, sizeof b, &b, NULL);
    d->compiler_available = b == CL_TRUE;

    char *ext = extensions(dev);
    const char *e = ext ? ext : "";
    d->fp16 = has(e, "cl_khr_fp16");
    cl_device_fp_config fp64 = 0;
    clGetDeviceInfo(dev, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp64, &fp64, NULL);
    d->fp64 = has(e, "cl_khr_fp64") || fp64 != 0;
    if (has(e, "cl_khr_subgroups")) {
        d->subgroups = SPARTAN_SUBGROUPS_KHR;
    } else if (has(e, "cl_intel_subgroups")) {
        d->subgroups = SPARTAN_SUBGROUPS_INTEL;
    } else {
        /* OpenCL 2.1+ devices may support subgroups in core without the extension string. */
        unsigned dv_major = 1, dv_minor = 0;
        sscanf(d->device_version, "OpenCL %u.%u", &dv_major, &dv_minor);
        if ((dv_major > 2 || (dv_major == 2 && dv_minor >= 1)) &&
            uint_info(dev, CL_DEVICE_MAX_NUM_SUB_GROUPS) > 0)
            d->subgroups = SPARTAN_SUBGROUPS_KHR;
    }
    free(ext);
}
