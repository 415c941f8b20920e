# PortaInstall.cmake — `cmake --install`: headers, the library, porta-info and porta-bench,
# the CMake package (find_package(porta) -> porta::porta, one component per optional
# backend) and porta.pc. Kernels are embedded in the library: no kernel file is installed.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(porta_cmake_dir "${CMAKE_INSTALL_LIBDIR}/cmake/porta")

install(TARGETS porta EXPORT porta-targets
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY include/porta DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.hpp" PATTERN "*.h")
install(FILES "${PROJECT_BINARY_DIR}/include/porta/version.hpp" "${PROJECT_BINARY_DIR}/include/porta/export.h"
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/porta)

# The tools find the library next to them (<prefix>/bin -> <prefix>/lib) wherever the prefix is.
foreach(tool porta-info porta-bench)
  if(TARGET ${tool})
    set_target_properties(${tool} PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
    install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

# What the build had: the package's components say found / not found accordingly.
set(PORTA_PACKAGE_HAVE_OPENCL ${PORTA_HAVE_OPENCL})
set(PORTA_PACKAGE_HAVE_VULKAN ${PORTA_HAVE_VULKAN})
if(NOT DEFINED PORTA_HAVE_MPI)
  set(PORTA_HAVE_MPI OFF)  # set by the collectives' MPI transport when it is built
endif()
set(PORTA_PACKAGE_HAVE_MPI ${PORTA_HAVE_MPI})
foreach(flag OPENCL VULKAN MPI)
  if(PORTA_PACKAGE_HAVE_${flag})
    set(PORTA_PACKAGE_HAVE_${flag} TRUE)
  else()
    set(PORTA_PACKAGE_HAVE_${flag} FALSE)
  endif()
endforeach()
if(PORTA_SHARED)
  set(PORTA_PACKAGE_SHARED TRUE)
else()
  set(PORTA_PACKAGE_SHARED FALSE)
endif()

install(EXPORT porta-targets NAMESPACE porta:: FILE porta-targets.cmake DESTINATION ${porta_cmake_dir})
configure_package_config_file(cmake/porta-config.cmake.in "${PROJECT_BINARY_DIR}/porta-config.cmake"
                              INSTALL_DESTINATION ${porta_cmake_dir})
# semver: 0.x releases are compatible within a minor version, from 1.0 within a major one.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(porta_compatibility SameMinorVersion)
else()
  set(porta_compatibility SameMajorVersion)
endif()
write_basic_package_version_file("${PROJECT_BINARY_DIR}/porta-config-version.cmake"
                                 COMPATIBILITY ${porta_compatibility})
install(FILES "${PROJECT_BINARY_DIR}/porta-config.cmake" "${PROJECT_BINARY_DIR}/porta-config-version.cmake"
        DESTINATION ${porta_cmake_dir})

# porta.pc finds its prefix from its own place (pcfiledir), so the install can be moved.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(PORTA_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH porta_pc_up "/root/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/root")
  string(REGEX REPLACE "/$" "" porta_pc_up "${porta_pc_up}")
  set(PORTA_PC_PREFIX "\${pcfiledir}/${porta_pc_up}")
endif()
# A shared libporta hides its dependencies; a static one hands them to the consumer's
# link (pkg-config --static). pkg-config reads Requires.private even without --static,
# so it is filled only when needed: a shared porta needs no -dev package of TBB or drivers.
set(PORTA_PC_CFLAGS "")
set(PORTA_PC_REQUIRES_PRIVATE "")
set(PORTA_PC_LIBS_PRIVATE "")
if(NOT PORTA_SHARED)
  set(PORTA_PC_CFLAGS " -DPORTA_STATIC_DEFINE")
  set(PORTA_PC_REQUIRES_PRIVATE "tbb")
  set(PORTA_PC_LIBS_PRIVATE "-lstdc++ -lm -pthread")
  if(PORTA_HAVE_OPENCL)
    string(APPEND PORTA_PC_REQUIRES_PRIVATE " OpenCL")
  endif()
  if(PORTA_HAVE_VULKAN)
    string(APPEND PORTA_PC_REQUIRES_PRIVATE " vulkan")
  endif()
endif()
configure_file(cmake/porta.pc.in "${PROJECT_BINARY_DIR}/porta.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/porta.pc" DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
