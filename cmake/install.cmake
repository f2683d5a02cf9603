# `cmake --install` puts headers, the static libraries and a package config in place, so that
# a separate project can `find_package(sdmp)` and link `sdmp::sdmp`; with the apps built
# (SDMP_BUILD_APPS), it also installs the `sdmp` command in bin/.
include(CMakePackageConfigHelpers)

set(sdmp_install_targets sdmp_crypto sdmp_protocol)
if(TARGET sdmp_framework)
  list(APPEND sdmp_install_targets sdmp_framework sdmp_all)
endif()

install(TARGETS ${sdmp_install_targets} EXPORT sdmpTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
foreach(layer crypto protocol framework)
  if(EXISTS ${PROJECT_SOURCE_DIR}/${layer}/include)
    install(DIRECTORY ${PROJECT_SOURCE_DIR}/${layer}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  endif()
endforeach()

set(sdmp_config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/sdmp)
install(EXPORT sdmpTargets NAMESPACE sdmp:: DESTINATION ${sdmp_config_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/sdmpConfig.cmake.in
  ${PROJECT_BINARY_DIR}/sdmpConfig.cmake INSTALL_DESTINATION ${sdmp_config_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/sdmpConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/sdmpConfig.cmake ${PROJECT_BINARY_DIR}/sdmpConfigVersion.cmake
  DESTINATION ${sdmp_config_dir})

# The command-line tool is a program, not part of the exported package: no EXPORT here.
if(SDMP_BUILD_APPS AND TARGET sdmp)
  install(TARGETS sdmp RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
