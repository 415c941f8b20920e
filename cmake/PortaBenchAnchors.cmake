# PortaBenchAnchors.cmake — the libraries porta is measured against, for benchmarks only
# (never the library): OpenBLAS sgemm and CLBlast when installed.
# porta_link_anchors(<target>) links those found and defines PORTA_BENCH_OPENBLAS /
# PORTA_BENCH_CLBLAST for the sources.
include_guard(GLOBAL)

find_package(OpenBLAS CONFIG QUIET)
if(NOT OpenBLAS_FOUND)
  message(STATUS "porta: OpenBLAS anchor not built (apt-get install libopenblas-dev)")
endif()
find_package(CLBlast CONFIG QUIET)
if(NOT (CLBlast_FOUND AND PORTA_HAVE_OPENCL))
  message(STATUS "porta: CLBlast anchor not built (apt-get install libclblast-dev)")
endif()

function(porta_link_anchors target)
  target_include_directories(${target} PRIVATE "${PROJECT_SOURCE_DIR}/bench")
  if(OpenBLAS_FOUND)
    target_compile_definitions(${target} PRIVATE PORTA_BENCH_OPENBLAS)
    target_include_directories(${target} PRIVATE ${OpenBLAS_INCLUDE_DIRS})
    target_link_libraries(${target} PRIVATE ${OpenBLAS_LIBRARIES})
  endif()
  if(CLBlast_FOUND AND PORTA_HAVE_OPENCL)
    target_compile_definitions(${target} PRIVATE PORTA_BENCH_CLBLAST)
    target_link_libraries(${target} PRIVATE clblast OpenCL::OpenCL)
  endif()
endfunction()
