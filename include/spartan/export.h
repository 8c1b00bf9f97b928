/* SPARTAN_API marks the public API; everything else in the shared library stays hidden. */
#ifndef SPARTAN_EXPORT_H
#define SPARTAN_EXPORT_H

#if defined(_WIN32)
#if defined(SPARTAN_BUILDING_LIBRARY)
#define SPARTAN_API __declspec(dllexport)
#else
#define SPARTAN_API
#endif
#elif defined(__GNUC__)
#define SPARTAN_API __attribute__((visibility("default")))
#else
#define SPARTAN_API
#endif

#endif /* SPARTAN_EXPORT_H */
