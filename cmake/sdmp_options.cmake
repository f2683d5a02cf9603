# Compile options for sdmp's own targets (not applied to third-party code).
add_library(sdmp_options INTERFACE)
target_compile_options(sdmp_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Woverloaded-virtual -Wconversion -Wno-sign-conversion -Wimplicit-fallthrough
  $<$<BOOL:${SDMP_WERROR}>:-Werror>
  # GCC 12's flow-based warnings give false positives inside libstdc++ at -O1/-O3 (inlined
  # vector/string copies): keep them visible, but not fatal.
  $<$<CXX_COMPILER_ID:GNU>:-Wno-error=array-bounds -Wno-error=restrict -Wno-error=maybe-uninitialized -Wno-error=stringop-overflow>)

# Sanitizers are selected per build directory (see CMakePresets.json).
set(SDMP_SANITIZE "" CACHE STRING "Sanitizers to enable: address,undefined | thread | empty")
if(SDMP_SANITIZE)
  add_compile_options(-fsanitize=${SDMP_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${SDMP_SANITIZE})
endif()

# Adds a static library of one layer: sources in src/, public headers in include/.
function(sdmp_add_layer name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(sdmp_${name} STATIC ${ARG_SOURCES})
  add_library(sdmp::${name} ALIAS sdmp_${name})
  set_target_properties(sdmp_${name} PROPERTIES EXPORT_NAME ${name} POSITION_INDEPENDENT_CODE ON)
  # The public headers need C++20 (coroutines, concepts): consumers get it with the target.
  target_compile_features(sdmp_${name} PUBLIC cxx_std_20)
  target_include_directories(sdmp_${name} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(sdmp_${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE $<BUILD_INTERFACE:sdmp_options> ${ARG_PRIVATE_DEPS})
endfunction()
