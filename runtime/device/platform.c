/* Platform and device enumeration through the ICD loader, and OpenCL error names. */
#include <stdlib.h>
#include <string.h>

#include "device/device_internal.h"

const char *sp_cl_error_name(cl_int code) {
    switch (code) {
#define E(x)                                                                                       \
    case x:                                                                                        \
        return #x;
        E(CL_SUCCESS)
        E(CL_DEVICE_NOT_FOUND)
        E(CL_DEVICE_NOT_AVAILABLE)
        E(CL_COMPILER_NOT_AVAILABLE)
        E(CL_MEM_OBJECT_ALLOCATION_FAILURE)
        E(CL_OUT_OF_RESOURCES)
        E(CL_OUT_OF_HOST_MEMORY)
        E(CL_PROFILING_INFO_NOT_AVAILABLE)
        E(CL_MEM_COPY_OVERLAP)
        E(CL_IMAGE_FORMAT_MISMATCH)
        E(CL_IMAGE_FORMAT_NOT_SUPPORTED)
        E(CL_BUILD_PROGRAM_FAILURE)
        E(CL_MAP_FAILURE)
        E(CL_MISALIGNED_SUB_BUFFER_OFFSET)
        E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
        E(CL_COMPILE_PROGRAM_FAILURE)
        E(CL_LINKER_NOT_AVAILABLE)
        E(CL_LINK_PROGRAM_FAILURE)
        E(CL_DEVICE_PARTITION_FAILED)
        E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
        E(CL_INVALID_VALUE)
        E(CL_INVALID_DEVICE_TYPE)
        E(CL_INVALID_PLATFORM)
        E(CL_INVALID_DEVICE)
        E(CL_INVALID_CONTEXT)
        E(CL_INVALID_QUEUE_PROPERTIES)
        E(CL_INVALID_COMMAND_QUEUE)
        E(CL_INVALID_HOST_PTR)
        E(CL_INVALID_MEM_OBJECT)
        E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
        E(CL_INVALID_IMAGE_SIZE)
        E(CL_INVALID_SAMPLER)
        E(CL_INVALID_BINARY)
        E(CL_INVALID_BUILD_OPTIONS)
        E(CL_INVALID_PROGRAM)
        E(CL_INVALID_PROGRAM_EXECUTABLE)
        E(CL_INVALID_KERNEL_NAME)
        E(CL_INVALID_KERNEL_DEFINITION)
        E(CL_INVALID_KERNEL)
        E(CL_INVALID_ARG_INDEX)
        E(CL_INVALID_ARG_VALUE)
        E(CL_INVALID_ARG_SIZE)
        E(CL_INVALID_KERNEL_ARGS)
        E(CL_INVALID_WORK_DIMENSION)
        E(CL_INVALID_WORK_GROUP_SIZE)
        E(CL_INVALID_WORK_ITEM_SIZE)
        E(CL_INVALID_GLOBAL_OFFSET)
        E(CL_INVALID_EVENT_WAIT_LIST)
        E(CL_INVALID_EVENT)
        E(CL_INVALID_OPERATION)
        E(CL_INVALID_GL_OBJECT)
        E(CL_INVALID_BUFFER_SIZE)
        E(CL_INVALID_MIP_LEVEL)
        E(CL_INVALID_GLOBAL_WORK_SIZE)
        E(CL_INVALID_PROPERTY)
        E(CL_INVALID_IMAGE_DESCRIPTOR)
        E(CL_INVALID_COMPILER_OPTIONS)
        E(CL_INVALID_LINKER_OPTIONS)
        E(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef E
    case -1001:
        return "CL_PLATFORM_NOT_FOUND_KHR";
    }
    return "CL_UNKNOWN_ERROR";
}

spartan_status sp_cl_status(cl_int code) {
    switch (code) {
    case CL_SUCCESS:
        return SPARTAN_OK;
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:
    case CL_OUT_OF_RESOURCES:
        return SPARTAN_STATUS_OUT_OF_DEVICE_MEMORY;
    case CL_OUT_OF_HOST_MEMORY:
        return SPARTAN_STATUS_OUT_OF_HOST_MEMORY;
    case CL_BUILD_PROGRAM_FAILURE:
    case CL_COMPILE_PROGRAM_FAILURE:
    case CL_LINK_PROGRAM_FAILURE:
        return SPARTAN_STATUS_BUILD_FAILED;
    default:
        return SPARTAN_STATUS_OPENCL_ERROR;
    }
}

spartan_status sp_cl_fail(sp_err *err, cl_int code, const char *what) {
    return sp_err_set(err, sp_cl_status(code), "%s: %s (%d)", what, sp_cl_error_name(code),
                      (int)code);
}

static spartan_status no_platform(sp_err *err, cl_int code) {
    const char *vendors = getenv("OCL_ICD_VENDORS");
    return sp_err_set(
        err, SPARTAN_STATUS_NO_PLATFORM,
        "the OpenCL ICD loader found no platform (clGetPlatformIDs: %s). Install an OpenCL "
        "driver (for CPUs: apt-get install pocl-opencl-icd; for NVIDIA GPUs: the driver's "
        "libnvidia-opencl.so.1 and an nvidia.icd file naming it) and check that its .icd file is "
        "in %s%s%s",
        sp_cl_error_name(code), vendors ? "OCL_ICD_VENDORS=" : "/etc/OpenCL/vendors",
        vendors ? vendors : "", vendors ? " (set in the environment)" : " or in OCL_ICD_VENDORS");
}

spartan_status sp_device_enumerate(sp_device **out, size_t *count, sp_err *err) {
    *out = NULL;
    *count = 0;
    cl_uint np = 0;
    cl_int rc = clGetPlatformIDs(0, NULL, &np);
    if (rc != CL_SUCCESS || np == 0) return no_platform(err, rc);
    cl_platform_id *plats = calloc(np, sizeof *plats);
    if (!plats) return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "listing platforms");
    rc = clGetPlatformIDs(np, plats, NULL);
    if (rc != CL_SUCCESS) {
        free(plats);
        return no_platform(err, rc);
    }
    sp_device *list = NULL;
    size_t n = 0;
    spartan_status st = SPARTAN_OK;
    for (cl_uint p = 0; p < np && st == SPARTAN_OK; p++) {
        cl_uint nd = 0;
        /* A platform with no device answers CL_DEVICE_NOT_FOUND: skip it, it is not an error. */
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0)
            continue;
        cl_device_id *devs = calloc(nd, sizeof *devs);
        sp_device *grown = realloc(list, (n + nd) * sizeof *list);
        if (!devs || !grown) {
            free(devs);
            if (grown) list = grown;
            st = sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "listing devices");
            break;
        }
        list = grown;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL) == CL_SUCCESS) {
            for (cl_uint d = 0; d < nd; d++) {
                sp_device *sd = &list[n++];
                memset(sd, 0, sizeof *sd);
                sd->platform = plats[p];
                sd->device = devs[d];
                sp_device_profile(plats[p], devs[d], p, d, &sd->info);
            }
        }
        free(devs);
    }
    free(plats);
    if (st != SPARTAN_OK) {
        free(list);
        return st;
    }
    if (n == 0) {
        free(list);
        return sp_err_set(err, SPARTAN_STATUS_NO_DEVICE,
                          "%u OpenCL platform(s) found, but none has a device: check the "
                          "driver's installation (clinfo shows what the loader sees)",
                          (unsigned)np);
    }
    *out = list;
    *count = n;
    return SPARTAN_OK;
}

spartan_status spartan_device_list(spartan_device_info **out, size_t *count) {
    sp_err *err = sp_thread_err();
    if (!out || !count)
        return sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_device_list: out and count must not be NULL");
    *out = NULL;
    *count = 0;
    sp_device *devs;
    size_t n;
    spartan_status st = sp_device_enumerate(&devs, &n, err);
    if (st != SPARTAN_OK) return st;
    spartan_device_info *infos = malloc(n * sizeof *infos);
    if (!infos) {
        free(devs);
        return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "listing devices");
    }
    for (size_t i = 0; i < n; i++) infos[i] = devs[i].info;
    free(devs);
    *out = infos;
    *count = n;
    return SPARTAN_OK;
}

void spartan_device_list_free(spartan_device_info *list) {
    free(list);
}
