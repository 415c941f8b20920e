// opencl_config.hpp — per-device launch parameters of the OpenCL kernels, kept apart
// from the code: a small table keyed by device type, to grow into a tuning database.
#pragma once

#include <CL/cl.h>

#include <cstddef>

namespace porta::backend::opencl {

struct KernelConfig {
  std::size_t fill_local = 256;         // work-group sizes of the one-element-per-item kernels
  std::size_t copy_local = 256;
  std::size_t elementwise_local = 256;
  std::size_t random_local = 256;
  std::size_t reduce_local = 256;       // work-items per (row, piece); a power of two
  bool reduce_contiguous = false;       // each work-item sums one run (CPU) or a strided comb (GPU)
  std::size_t reduce_short_chunk = 32;  // pieces up to this long are summed by one work-item each
  std::size_t copy_rows_min_inner = 16; // innermost extent from which copy_cast uses the 2D grid
  std::size_t copy_rows_local[2] = {64, 4};  // its work-group: x along rows, y across them
  std::size_t max_items_per_launch = std::size_t(1) << 30;  // larger grids are cut into launches
};

// Memory-bound kernels: GPUs want many work-items per group for latency hiding; CPU
// runtimes (PoCL) run a work-group as a loop vectorised across work-items, where the
// group size matters little but strided reads would thrash the caches.
inline KernelConfig kernel_config(cl_device_type type) {
  KernelConfig config;
  if ((type & CL_DEVICE_TYPE_CPU) != 0) {
    config.fill_local = 256;
    config.copy_local = 256;
    config.elementwise_local = 256;
    config.random_local = 256;
    config.reduce_local = 16;
    config.reduce_contiguous = true;
    // One work-item per piece up to this length: no barriers, which PoCL emulates at a cost.
    config.reduce_short_chunk = 16384;
    // 16 x 16: each group reads 16 whole cache lines of a transposed input, 16 elements each.
    config.copy_rows_local[0] = 16;
    config.copy_rows_local[1] = 16;
  }
  return config;
}

}  // namespace porta::backend::opencl
