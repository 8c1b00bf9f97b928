/* An application outside the tree that embeds the installed libspartan: it prints the
 * library version, lists the devices and creates a context on the selected one. Built by
 * tools/test.sh against an installed copy, through find_package(spartan) and through
 * pkg-config. Exit 0 when a context was created. */
#include <spartan/spartan.h>

#include <stdio.h>

/* Without SPARTAN_EXPERIMENTAL_API an application sees the stable tier only. */
#ifdef SPARTAN_EXPERIMENTAL_DECLARED
#error "ops.h declares its experimental tier without SPARTAN_EXPERIMENTAL_API"
#endif

int main(void) {
    printf("embed: libspartan %s (header %s)\n", spartan_version_string(), SPARTAN_VERSION_STRING);
    if (spartan_version_number() != SPARTAN_VERSION_NUMBER) {
        fprintf(stderr, "embed: header and library versions differ\n");
        return 1;
    }
    spartan_context *ctx = NULL;
    spartan_status st = spartan_context_create(NULL, &ctx);
    if (st != SPARTAN_OK) {
        fprintf(stderr, "embed: %s: %s\n", spartan_status_name(st), spartan_last_error(NULL));
        return 1;
    }
    const spartan_device_info *dev = spartan_context_device(ctx);
    printf("embed: context on %s (%s)\n", dev->name, dev->platform_name);
    spartan_context_destroy(ctx);
    return 0;
}
