# Installs headers, both libraries, a pkg-config file and a CMake package, so an embedding
# application finds Spartan either way:
#   find_package(spartan 0.1 REQUIRED)  ->  target spartan::spartan (or spartan::spartan_static)
#   pkg-config --cflags --libs spartan  (add --static for libspartan.a)
include(CMakePackageConfigHelpers)

# spartan/dist.h (it includes mpi.h) with the MPI build's spartan_dist only
set(_sp_install_targets spartan spartan_static)
if(SPARTAN_WITH_MPI)
    list(APPEND _sp_install_targets spartan_dist)
    install(DIRECTORY include/spartan DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
            FILES_MATCHING PATTERN "*.h")
else()
    install(DIRECTORY include/spartan DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
            FILES_MATCHING PATTERN "*.h" PATTERN "dist.h" EXCLUDE)
endif()
install(TARGETS ${_sp_install_targets} EXPORT spartanTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(SPARTAN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/spartan)
install(EXPORT spartanTargets NAMESPACE spartan:: DESTINATION ${SPARTAN_CMAKE_DIR})
configure_package_config_file(cmake/spartanConfig.cmake.in
    "${CMAKE_CURRENT_BINARY_DIR}/spartanConfig.cmake" INSTALL_DESTINATION ${SPARTAN_CMAKE_DIR})
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/spartanConfigVersion.cmake"
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/spartanConfig.cmake"
              "${CMAKE_CURRENT_BINARY_DIR}/spartanConfigVersion.cmake"
        DESTINATION ${SPARTAN_CMAKE_DIR})

if(SPARTAN_HAVE_CLBLAST)
    set(SPARTAN_PC_LIBS_PRIVATE "-lclblast -lcjson -lz -lpthread -lm")
else()
    set(SPARTAN_PC_LIBS_PRIVATE "-lcjson -lz -lpthread -lm")
endif()
# The .pc file finds its prefix from its own place (${pcfiledir}), so an installed tree can
# be moved (or installed with cmake --install --prefix) and still be found.
file(RELATIVE_PATH SPARTAN_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
string(REGEX REPLACE "/$" "" SPARTAN_PC_TO_PREFIX "${SPARTAN_PC_TO_PREFIX}")
configure_file(cmake/spartan.pc.in "${CMAKE_CURRENT_BINARY_DIR}/spartan.pc" @ONLY)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/spartan.pc"
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
