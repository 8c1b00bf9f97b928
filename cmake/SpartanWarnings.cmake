# Warning flags for our own targets, and the sanitizer switch (applies to everything built here).

function(spartan_target_warnings target)
    target_compile_options(${target} PRIVATE
        -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
        -Wpointer-arith -Wformat=2 -Wvla -Wundef
        $<$<BOOL:${SPARTAN_WERROR}>:-Werror>)
endfunction()

macro(spartan_enable_sanitizers list)
    if(NOT "${list}" STREQUAL "")
        add_compile_options(-fsanitize=${list} -fno-omit-frame-pointer -fno-sanitize-recover=all)
        add_link_options(-fsanitize=${list})
    endif()
endmacro()
