# PortaBenchAnchors.cmake — the libraries porta is measured against, for benchmarks only
# (never the library): OpenBLAS sgemm and CLBlast when installed.
# porta_link_anchors(<target>) links those found and defines PORTA_BENCH_OPENBLAS /
# PORTA_BENCH_CLBLAST for the sources. Included by every directory that links anchors:
# find_package results are directory-scoped.

find_package(OpenBLAS CONFIG QUIET)
find_package(CLBlast CONFIG QUIET)
get_property(porta_anchors_reported GLOBAL PROPERTY PORTA_ANCHORS_REPORTED)
if(NOT porta_anchors_reported)
  set_property(GLOBAL PROPERTY PORTA_ANCHORS_REPORTED TRUE)
  if(NOT OpenBLAS_FOUND)
    message(STATUS "porta: OpenBLAS anchor not built (apt-get install libopenblas-dev)")
  endif()
  if(NOT (CLBlast_FOUND AND PORTA_HAVE_OPENCL))
    message(STATUS "porta: CLBlast anchor not built (apt-get install libclblast-dev)")
  endif()
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
