/* Private interface of the device layer: raw OpenCL handles next to each profile, OpenCL error
 * names, and the tuned-parameter lookup. Nothing outside device/ names a vendor. */
#ifndef SP_DEVICE_INTERNAL_H
#define SP_DEVICE_INTERNAL_H

#include <CL/cl.h>

#include "core/error.h"
#include "spartan/device.h"

typedef struct sp_device {
    spartan_device_info info;
    cl_platform_id platform;
    cl_device_id device;
} sp_device;

/* Every device of every platform, in loader order. *out is malloc'd (free()). */
spartan_status sp_device_enumerate(sp_device **out, size_t *count, sp_err *err);

/* Fills a profile from the driver's answers (profile.c). */
void sp_device_profile(cl_platform_id platform, cl_device_id device, unsigned platform_index,
                       unsigned device_index, spartan_device_info *info);

/* Selection over profiles (select.c); err gets the message on failure. sp_device_candidates
 * gives every device the selection admits, in the order to try them (idx has room for count);
 * sp_device_select the first of them. */
spartan_status sp_device_candidates(const spartan_device_info *list, size_t stride, size_t count,
                                    const char *selection, size_t *idx, size_t *n, sp_err *err);
spartan_status sp_device_select(const spartan_device_info *list, size_t stride, size_t count,
                                const char *selection, size_t *index, sp_err *err);

/* "CL_OUT_OF_RESOURCES" etc.; "CL_UNKNOWN_ERROR" for codes not in the table. */
const char *sp_cl_error_name(cl_int code);

/* The status an OpenCL error code maps to (allocation failures become OUT_OF_DEVICE_MEMORY). */
spartan_status sp_cl_status(cl_int code);

/* Records an OpenCL failure: "<what>: <CL_NAME> (<code>)". Returns the mapped status. */
spartan_status sp_cl_fail(sp_err *err, cl_int code, const char *what);

/* ---- Tuned parameters (tuned.c) ---------------------------------------------------------------
 * What we know about a device, as named integers that become -DSP_<NAME>=<value> build options.
 * Lookup: global defaults, then the vendor's defaults, then an entry for the device's name, then
 * the sources in order (the tuning databases' entries, the caller's parameters), then
 * SPARTAN_TUNE="NAME=V,...", then values derived from the profile where none gave one. A value a
 * source or SPARTAN_TUNE gives outside its range is refused (INVALID_ARGUMENT, naming the
 * source), never clamped. */
#define SP_TUNED_MAX 16

typedef struct sp_tuned {
    unsigned count;
    const char *names[SP_TUNED_MAX];
    long values[SP_TUNED_MAX];
} sp_tuned;

/* A source of parameters: "NAME=V,..." and its name for messages ("SPARTAN_TUNE", a file). */
typedef struct sp_tuned_source {
    const char *name;
    const char *params;
} sp_tuned_source;

spartan_status sp_tuned_lookup(const spartan_device_info *info, const sp_tuned_source *src,
                               size_t nsrc, sp_tuned *out, sp_err *err);

/* ---- Tuning databases (tuning_db.c) ------------------------------------------------------------
 * spartan-tune's entries: the shipped ones (tuning/NAME.json in the source tree, embedded) match a
 * device by its class (vendor, type, vector width); the user's, one file per device in
 * <cache dir>/tuning/, by its identity (platform, device, driver, library version). Both are
 * checked before use: an entry that does not parse, belongs to another device or library
 * version, or whose parameters the lookup refuses on this device is ignored, with the reason. */
typedef enum sp_tuning_mode {
    SP_TUNING_ON = 0,  /* the shipped entry, then the user's */
    SP_TUNING_SHIPPED, /* the shipped entry only */
    SP_TUNING_OFF      /* neither: the table */
} sp_tuning_mode;

/* The mode from opts.tuning, else $SPARTAN_TUNING ("on", "shipped", "off"); INVALID_ARGUMENT for
 * anything else. */
spartan_status sp_tuning_mode_parse(const char *text, sp_tuning_mode *mode, sp_err *err);

/* The tuned parameters of a context: the databases the mode admits (cache_dir: the resolved cache
 * directory, NULL when the cache is off), then extra ("NAME=V,...", may be NULL), then
 * SPARTAN_TUNE. note gets where the values came from and what was ignored, one line each. */
spartan_status sp_tuning_lookup(const spartan_device_info *info, sp_tuning_mode mode,
                                const char *cache_dir, const char *extra, sp_tuned *out, char *note,
                                size_t note_len, sp_err *err);

/* -1 when the name is unknown. */
long sp_tuned_get(const sp_tuned *t, const char *name);

/* "-DSP_VEC=16 -DSP_WG=256 ..." into buf; returns INVALID_ARGUMENT if it does not fit. */
spartan_status sp_tuned_options(const sp_tuned *t, char *buf, size_t len);

#endif /* SP_DEVICE_INTERNAL_H */
