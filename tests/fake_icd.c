/* A fake OpenCL driver (an ICD the loader can load), to test how Spartan handles broken
 * installations that real drivers cannot be made to produce on demand. One platform, "Spartan
 * Fake Platform", with one GPU, "Spartan Fake GPU". SPARTAN_FAKE_ICD_MODE chooses the fault:
 *   context_fails   clCreateContext returns CL_OUT_OF_RESOURCES
 *   unavailable     the device reports CL_DEVICE_AVAILABLE = false
 *   no_compiler     the device reports CL_DEVICE_COMPILER_AVAILABLE = false
 *   no_devices      the platform has no device (CL_DEVICE_NOT_FOUND)
 * Only the entry points the device layer reaches before a context exists are implemented. */
#define CL_TARGET_OPENCL_VERSION 300
#include <CL/cl.h>
#include <CL/cl_icd.h>
#include <stdlib.h>
#include <string.h>

struct _cl_platform_id {
    struct _cl_icd_dispatch *dispatch;
};
struct _cl_device_id {
    struct _cl_icd_dispatch *dispatch;
};

static struct _cl_icd_dispatch table;
static struct _cl_platform_id platform = {&table};
static struct _cl_device_id device = {&table};

static int mode(const char *m) {
    const char *s = getenv("SPARTAN_FAKE_ICD_MODE");
    return s && strcmp(s, m) == 0;
}

static cl_int answer(const void *value, size_t size, size_t param_value_size, void *param_value,
                     size_t *param_value_size_ret) {
    if (param_value_size_ret) *param_value_size_ret = size;
    if (param_value) {
        if (param_value_size < size) return CL_INVALID_VALUE;
        memcpy(param_value, value, size);
    }
    return CL_SUCCESS;
}

static cl_int str_answer(const char *s, size_t n, void *v, size_t *ret) {
    return answer(s, strlen(s) + 1, n, v, ret);
}

static cl_int CL_API_CALL fake_GetPlatformInfo(cl_platform_id p, cl_platform_info what, size_t n,
                                               void *v, size_t *ret) {
    (void)p;
    switch (what) {
    case CL_PLATFORM_NAME:
        return str_answer("Spartan Fake Platform", n, v, ret);
    case CL_PLATFORM_VENDOR:
        return str_answer("Spartan tests", n, v, ret);
    case CL_PLATFORM_VERSION:
        return str_answer("OpenCL 1.2 fake", n, v, ret);
    case CL_PLATFORM_PROFILE:
        return str_answer("FULL_PROFILE", n, v, ret);
    case CL_PLATFORM_EXTENSIONS:
        return str_answer("cl_khr_icd", n, v, ret);
    case CL_PLATFORM_ICD_SUFFIX_KHR:
        return str_answer("FAKE", n, v, ret);
    default:
        return CL_INVALID_VALUE;
    }
}

static cl_int CL_API_CALL fake_GetDeviceIDs(cl_platform_id p, cl_device_type type, cl_uint num,
                                            cl_device_id *devices, cl_uint *num_devices) {
    (void)p;
    if (mode("no_devices") || !(type & CL_DEVICE_TYPE_GPU)) {
        if (num_devices) *num_devices = 0;
        return CL_DEVICE_NOT_FOUND;
    }
    if (num_devices) *num_devices = 1;
    if (devices && num >= 1) devices[0] = &device;
    return CL_SUCCESS;
}

static cl_int CL_API_CALL fake_GetDeviceInfo(cl_device_id d, cl_device_info what, size_t n, void *v,
                                             size_t *ret) {
    (void)d;
    cl_uint u;
    cl_ulong ul;
    size_t sz;
    cl_bool b;
    cl_device_type t;
    switch (what) {
    case CL_DEVICE_NAME:
        return str_answer("Spartan Fake GPU", n, v, ret);
    case CL_DEVICE_VENDOR:
        return str_answer("FakeVendor", n, v, ret);
    case CL_DEVICE_VERSION:
        return str_answer("OpenCL 1.2 fake", n, v, ret);
    case CL_DRIVER_VERSION:
        return str_answer("0.0-fake", n, v, ret);
    case CL_DEVICE_OPENCL_C_VERSION:
        return str_answer("OpenCL C 1.2 fake", n, v, ret);
    case CL_DEVICE_EXTENSIONS:
        return str_answer("", n, v, ret);
    case CL_DEVICE_TYPE:
        t = CL_DEVICE_TYPE_GPU;
        return answer(&t, sizeof t, n, v, ret);
    case CL_DEVICE_MAX_COMPUTE_UNITS:
    case CL_DEVICE_MAX_CLOCK_FREQUENCY:
        u = 7;
        return answer(&u, sizeof u, n, v, ret);
    case CL_DEVICE_GLOBAL_MEM_SIZE:
    case CL_DEVICE_MAX_MEM_ALLOC_SIZE:
        ul = 1u << 30;
        return answer(&ul, sizeof ul, n, v, ret);
    case CL_DEVICE_LOCAL_MEM_SIZE:
        ul = 48 * 1024;
        return answer(&ul, sizeof ul, n, v, ret);
    case CL_DEVICE_MAX_WORK_GROUP_SIZE:
        sz = 256;
        return answer(&sz, sizeof sz, n, v, ret);
    case CL_DEVICE_AVAILABLE:
        b = mode("unavailable") ? CL_FALSE : CL_TRUE;
        return answer(&b, sizeof b, n, v, ret);
    case CL_DEVICE_COMPILER_AVAILABLE:
        b = mode("no_compiler") ? CL_FALSE : CL_TRUE;
        return answer(&b, sizeof b, n, v, ret);
    default:
        return CL_INVALID_VALUE;
    }
}

static cl_context CL_API_CALL
fake_CreateContext(const cl_context_properties *props, cl_uint n, const cl_device_id *devs,
                   void(CL_CALLBACK *notify)(const char *, const void *, size_t, void *),
                   void *user, cl_int *errcode) {
    (void)props;
    (void)n;
    (void)devs;
    (void)notify;
    (void)user;
    /* Every mode ends here: a context on the fake device is never usable. */
    if (errcode) *errcode = CL_OUT_OF_RESOURCES;
    return NULL;
}

static cl_int CL_API_CALL fake_IcdGetPlatformIDs(cl_uint num, cl_platform_id *platforms,
                                                 cl_uint *num_platforms) {
    table.clGetPlatformInfo = fake_GetPlatformInfo;
    table.clGetDeviceIDs = fake_GetDeviceIDs;
    table.clGetDeviceInfo = fake_GetDeviceInfo;
    table.clCreateContext = fake_CreateContext;
    if (num_platforms) *num_platforms = 1;
    if (platforms && num >= 1) platforms[0] = &platform;
    return CL_SUCCESS;
}

CL_API_ENTRY void *CL_API_CALL clGetExtensionFunctionAddress(const char *name);
CL_API_ENTRY void *CL_API_CALL clGetExtensionFunctionAddress(const char *name) {
    if (strcmp(name, "clIcdGetPlatformIDsKHR") == 0) return (void *)fake_IcdGetPlatformIDs;
    return NULL;
}

CL_API_ENTRY cl_int CL_API_CALL clIcdGetPlatformIDsKHR(cl_uint num, cl_platform_id *platforms,
                                                       cl_uint *num_platforms) {
    return fake_IcdGetPlatformIDs(num, platforms, num_platforms);
}

CL_API_ENTRY cl_int CL_API_CALL clGetPlatformInfo(cl_platform_id p, cl_platform_info what, size_t n,
                                                  void *v, size_t *ret) {
    return fake_GetPlatformInfo(p, what, n, v, ret);
}
