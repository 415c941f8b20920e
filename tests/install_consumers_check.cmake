# install_consumers_check.cmake — run as `cmake -P` by ctest: installs porta into a fresh
# prefix, checks what was installed (no kernel files, only the public API exported), then
# builds and runs the consumer projects of examples/ against that prefix alone.
# Arguments: BUILD_DIR, SOURCE_DIR, WORK_DIR, GENERATOR, EXPECT_COMPONENTS (comma list of
# the backends built), SHARED (whether libporta is a shared library), EXPECT_PORTA_BENCH
# (whether the porta-bench target exists), CC, CXX.
cmake_policy(VERSION 3.25)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message(STATUS "${what}:\n${out}${err}")
  if(NOT code EQUAL 0)
    message(FATAL_ERROR "${what} failed (${code})")
  endif()
endfunction()

set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
run("cmake --install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")

# What a user gets: headers, library, tools, the CMake package, porta.pc.
if(SHARED)
  set(binaries lib/libporta.so bin/porta-info)
else()
  set(binaries lib/libporta.a bin/porta-info)
endif()
if(EXPECT_PORTA_BENCH)
  list(APPEND binaries bin/porta-bench)
endif()
foreach(expected include/porta/porta.hpp include/porta/porta.h include/porta/version.hpp include/porta/export.h
                 ${binaries} lib/cmake/porta/porta-config.cmake lib/cmake/porta/porta-config-version.cmake
                 lib/cmake/porta/porta-targets.cmake lib/pkgconfig/porta.pc)
  if(NOT EXISTS "${prefix}/${expected}")
    message(FATAL_ERROR "not installed: ${expected}")
  endif()
endforeach()
# Kernels are embedded in the library: no source or SPIR-V file may be needed at run time.
file(GLOB_RECURSE installed RELATIVE "${prefix}" "${prefix}/*")
foreach(file IN LISTS installed)
  if(file MATCHES "\\.(cl|comp|glsl|spv|in)$" OR file MATCHES "^include/porta/(backends|kernels)")
    message(FATAL_ERROR "installed a file that is not part of the public package: ${file}")
  endif()
endforeach()

# Only the public API is exported: nothing of porta's internals (backends, kernels, the
# front end's helpers, the embedded kernel tables) is visible in the dynamic symbol table.
if(SHARED)
  execute_process(COMMAND nm -D -C --defined-only "${prefix}/lib/libporta.so" OUTPUT_VARIABLE symbols RESULT_VARIABLE code)
  if(NOT code EQUAL 0)
    message(FATAL_ERROR "nm failed on the installed library")
  endif()
  # A symbol's own name (after the address and type letter), not its parameter types.
  string(REGEX MATCHALL "[0-9a-f]* [A-Za-z] ([a-z ]+ for )?(porta::(backend|kernels|detail|embedded)::|\\(anonymous)[^\n]*"
         internal "${symbols}")
  string(REGEX MATCHALL "[^\n]* porta_[a-z_]+\n" c_functions "${symbols}")
  if(internal)
    list(JOIN internal "\n" internal)
    message(FATAL_ERROR "internal symbols are exported:\n${internal}")
  endif()
  list(LENGTH c_functions c_count)
  if(c_count LESS 20)
    message(FATAL_ERROR "expected the C API's functions among the exported symbols, found ${c_count}:\n${symbols}")
  endif()
endif()

run("installed porta-info" "${prefix}/bin/porta-info")

# Components: found exactly for the optional parts this build has. (A static porta finds
# its dependencies, and FindThreads needs a language; a shared one needs none: faster.)
string(REPLACE "," ";" built "${EXPECT_COMPONENTS}")
if(SHARED)
  set(languages NONE)
else()
  set(languages CXX)
endif()
foreach(component opencl vulkan mpi)
  set(project_dir "${WORK_DIR}/component-${component}")
  file(WRITE "${project_dir}/CMakeLists.txt" "cmake_minimum_required(VERSION 3.25)\nproject(c ${languages})\n"
             "find_package(porta REQUIRED COMPONENTS ${component})\n")
  execute_process(COMMAND ${CMAKE_COMMAND} -S "${project_dir}" -B "${project_dir}/build" "-DCMAKE_PREFIX_PATH=${prefix}"
                  RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(component IN_LIST built AND NOT code EQUAL 0)
    message(FATAL_ERROR "find_package(porta COMPONENTS ${component}) failed, but the build has ${component}:\n${out}${err}")
  elseif(NOT component IN_LIST built AND code EQUAL 0)
    message(FATAL_ERROR "find_package(porta COMPONENTS ${component}) succeeded, but the build has no ${component}")
  endif()
endforeach()
# The version file: a later major (or, in 0.x, minor) version is not this package.
set(project_dir "${WORK_DIR}/version")
file(WRITE "${project_dir}/CMakeLists.txt" "cmake_minimum_required(VERSION 3.25)\nproject(v ${languages})\n"
           "find_package(porta 99 QUIET)\nif(porta_FOUND)\n  message(FATAL_ERROR accepted)\nendif()\n")
run("find_package(porta 99) refuses" ${CMAKE_COMMAND} -S "${project_dir}" -B "${project_dir}/build"
    "-DCMAKE_PREFIX_PATH=${prefix}")

# examples/consumer-cmake: find_package(porta) and porta::porta.
run("configure consumer-cmake" ${CMAKE_COMMAND} -S "${SOURCE_DIR}/examples/consumer-cmake" -B "${WORK_DIR}/consumer-cmake"
    -G "${GENERATOR}" "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_CXX_COMPILER=${CXX}")
run("build consumer-cmake" ${CMAKE_COMMAND} --build "${WORK_DIR}/consumer-cmake")
run("run consumer-cmake" "${WORK_DIR}/consumer-cmake/porta-cmake-consumer")

# examples/consumer-pkgconfig: pkg-config, a C++ program and the plain-C example.
file(MAKE_DIRECTORY "${WORK_DIR}/consumer-pkgconfig")
run("build consumer-pkgconfig" ${CMAKE_COMMAND} -E env "PKG_CONFIG_PATH=${prefix}/lib/pkgconfig" "CC=${CC}" "CXX=${CXX}"
    make --no-print-directory -C "${WORK_DIR}/consumer-pkgconfig" -f "${SOURCE_DIR}/examples/consumer-pkgconfig/Makefile")
run("run the pkg-config consumer" "${WORK_DIR}/consumer-pkgconfig/porta-pkgconfig-consumer")
run("run the C example" "${WORK_DIR}/consumer-pkgconfig/c-api-example")
