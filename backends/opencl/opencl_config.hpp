// opencl_config.hpp — per-device launch parameters of the OpenCL kernels, kept apart
// from the code: memory-bound kernels by device type, and a matmul table by device that
// tools/opencl_matmul_tuner.cpp prints entries for.
#pragma once

#include <CL/cl.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <sstream>
#include <string>
#include <string_view>

#include "porta/error.hpp"

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

// ---- matmul ------------------------------------------------------------------------

enum class MatmulKernel { packed, tiled };

// kernels/matmul/opencl_packed.cl: an MR x (VW * NV) block of C per work-item over the
// whole k, work-groups of group_n x group_m items (stacked along M to share B panels).
struct PackedMatmulConfig {
  unsigned mr = 6;
  unsigned vw = 8;
  unsigned nv = 2;
  unsigned group_m = 16;
  unsigned group_n = 1;
  unsigned kc = 0;  // k per lockstep step of the work-group (0: whole k per item)
};

// kernels/matmul/opencl_tiled.cl: an mwg x nwg block of C per work-group of ndimc x mdimc
// items, k staged kwg at a time through local memory; vwm / vwn are the vector widths.
struct TiledMatmulConfig {
  unsigned mwg = 64;
  unsigned nwg = 64;
  unsigned kwg = 16;
  unsigned mdimc = 16;
  unsigned ndimc = 16;
  unsigned vwm = 4;
  unsigned vwn = 4;
};

struct MatmulConfig {
  MatmulKernel preferred = MatmulKernel::tiled;
  PackedMatmulConfig packed;
  TiledMatmulConfig tiled;
};

// One row of the table: the first row whose type, vendor and name match is the device's.
struct MatmulTableEntry {
  cl_device_type type;   // matches when the device's type shares a bit with it; 0 = any
  const char* vendor;    // substring of CL_DEVICE_VENDOR, case-insensitive; "" = any
  const char* name;      // substring of CL_DEVICE_NAME, case-insensitive; "" = any
  MatmulConfig config;
};

// Most specific first. Rows without a measurement note are starting points, not tuned:
// run porta-opencl-tuner on the device and paste what it prints above them.
inline constexpr MatmulTableEntry matmul_table[] = {
    // PoCL 3.1 / LLVM 15 on a 2-core Xeon (Sapphire Rapids, AVX-512), porta-opencl-tuner:
    // 6 x 64 in 24 float16 accumulators, 16 row blocks stepping k by 128 together.
    {CL_DEVICE_TYPE_CPU, "", "skylake-avx512", {MatmulKernel::packed, {6, 16, 4, 16, 1, 128}, {}}},
    // Other CPU devices (PoCL on AVX2 machines): 6 x 16 in twelve float8 accumulators,
    // 16 row blocks stepping k by 256 together. porta-opencl-tuner on PoCL 3.1 / LLVM 15,
    // 2-core AMD EPYC (Zen3): 134 / 151 GFLOP/s at 1024 / 2048 against 76 / 80 for the
    // whole k per item (kc = 0).
    {CL_DEVICE_TYPE_CPU, "", "", {MatmulKernel::packed, {6, 8, 2, 16, 1, 256}, {}}},
    // Discrete GPUs with wide register files: 128 x 128 tiles, 8 x 8 outputs per item.
    {CL_DEVICE_TYPE_GPU, "nvidia", "", {MatmulKernel::tiled, {}, {128, 128, 16, 16, 16, 4, 4}}},
    {CL_DEVICE_TYPE_GPU, "advanced micro devices", "", {MatmulKernel::tiled, {}, {128, 128, 16, 16, 16, 4, 4}}},
    // Any other device: the kernels' defaults, 64 x 64 tiles with 4 x 4 outputs per item.
    {0, "", "", {MatmulKernel::tiled, {}, {}}},
};

inline bool contains_ignoring_case(std::string_view text, std::string_view part) {
  if (part.empty()) return true;
  auto lower = [](char ch) { return static_cast<char>(std::tolower(static_cast<unsigned char>(ch))); };
  return std::search(text.begin(), text.end(), part.begin(), part.end(),
                     [&](char x, char y) { return lower(x) == lower(y); }) != text.end();
}

inline MatmulConfig matmul_config(cl_device_type type, std::string_view vendor, std::string_view name) {
  for (const MatmulTableEntry& entry : matmul_table) {
    if ((entry.type == 0 || (entry.type & type) != 0) && contains_ignoring_case(vendor, entry.vendor) &&
        contains_ignoring_case(name, entry.name)) {
      return entry.config;
    }
  }
  return {};
}

// Steps of k one packing work-item copies (opencl_packed.cl's PORTA_PACK_STEPS); the
// host sizes the packing grid with it.
inline constexpr std::size_t matmul_pack_steps = 16;

// The -D options that pass a configuration to its kernel source.
inline std::string build_defines(const PackedMatmulConfig& c) {
  return " -DPORTA_MR=" + std::to_string(c.mr) + " -DPORTA_VW=" + std::to_string(c.vw) +
         " -DPORTA_NV=" + std::to_string(c.nv) + " -DPORTA_KC=" + std::to_string(c.kc) +
         " -DPORTA_PACK_STEPS=" + std::to_string(matmul_pack_steps);
}

inline std::string build_defines(const TiledMatmulConfig& c) {
  return " -DPORTA_MWG=" + std::to_string(c.mwg) + " -DPORTA_NWG=" + std::to_string(c.nwg) +
         " -DPORTA_KWG=" + std::to_string(c.kwg) + " -DPORTA_MDIMC=" + std::to_string(c.mdimc) +
         " -DPORTA_NDIMC=" + std::to_string(c.ndimc) + " -DPORTA_VWM=" + std::to_string(c.vwm) +
         " -DPORTA_VWN=" + std::to_string(c.vwn);
}

// Text form used by $PORTA_OPENCL_MATMUL (an override for experiments and the tuner):
// "packed mr=6 vw=8 nv=2 gm=16 gn=1 kc=0" or "tiled mwg=64 nwg=64 kwg=16 mdimc=16 ndimc=16 vwm=4 vwn=4";
// keys left out keep the table's value.
inline std::string to_string(const PackedMatmulConfig& c) {
  return "packed mr=" + std::to_string(c.mr) + " vw=" + std::to_string(c.vw) + " nv=" + std::to_string(c.nv) +
         " gm=" + std::to_string(c.group_m) + " gn=" + std::to_string(c.group_n) + " kc=" + std::to_string(c.kc);
}

inline std::string to_string(const TiledMatmulConfig& c) {
  return "tiled mwg=" + std::to_string(c.mwg) + " nwg=" + std::to_string(c.nwg) + " kwg=" + std::to_string(c.kwg) +
         " mdimc=" + std::to_string(c.mdimc) + " ndimc=" + std::to_string(c.ndimc) + " vwm=" + std::to_string(c.vwm) +
         " vwn=" + std::to_string(c.vwn);
}

// Checks what the kernel sources' #error lines would, so a bad value is a clear error.
inline std::string invalid_reason(const PackedMatmulConfig& c) {
  if (c.mr < 1 || c.mr > 32) return "mr must be 1..32";
  if (c.vw != 2 && c.vw != 4 && c.vw != 8 && c.vw != 16) return "vw must be 2, 4, 8 or 16";
  if (c.nv < 1 || c.nv > 8) return "nv must be 1..8";
  if (c.group_m < 1 || c.group_n < 1) return "gm and gn must be >= 1";
  return {};
}

inline std::string invalid_reason(const TiledMatmulConfig& c) {
  auto vector_ok = [](unsigned w) { return w == 1 || w == 2 || w == 4 || w == 8; };
  if (!vector_ok(c.vwm) || !vector_ok(c.vwn)) return "vwm and vwn must be 1, 2, 4 or 8";
  if (c.mdimc < 1 || c.ndimc < 1 || c.kwg < 1) return "mdimc, ndimc and kwg must be >= 1";
  if (c.mwg == 0 || c.mwg % (c.mdimc * c.vwm) != 0) return "mwg must be a multiple of mdimc * vwm";
  if (c.nwg == 0 || c.nwg % (c.ndimc * c.vwn) != 0) return "nwg must be a multiple of ndimc * vwn";
  return {};
}

// Applies a text form to `config` (the kernel named first, its keys after).
inline void apply_override(std::string_view text, MatmulConfig& config) {
  std::istringstream in{std::string(text)};
  std::string kernel;
  in >> kernel;
  auto fail = [&](const std::string& why) {
    throw Error(ErrorKind::invalid_argument,
                "porta opencl: PORTA_OPENCL_MATMUL='" + std::string(text) + "': " + why);
  };
  if (kernel != "packed" && kernel != "tiled") fail("expected 'packed ...' or 'tiled ...'");
  std::string pair;
  while (in >> pair) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos) fail("expected key=value, got '" + pair + "'");
    const std::string key = pair.substr(0, eq);
    unsigned value = 0;
    try {
      value = static_cast<unsigned>(std::stoul(pair.substr(eq + 1)));
    } catch (const std::exception&) {
      fail("expected a number in '" + pair + "'");
    }
    unsigned* field = nullptr;
    if (kernel == "packed") {
      PackedMatmulConfig& c = config.packed;
      field = key == "mr" ? &c.mr : key == "vw" ? &c.vw : key == "nv" ? &c.nv : key == "gm" ? &c.group_m
            : key == "gn" ? &c.group_n : key == "kc" ? &c.kc : nullptr;
    } else {
      TiledMatmulConfig& c = config.tiled;
      field = key == "mwg" ? &c.mwg : key == "nwg" ? &c.nwg : key == "kwg" ? &c.kwg : key == "mdimc" ? &c.mdimc
            : key == "ndimc" ? &c.ndimc : key == "vwm" ? &c.vwm : key == "vwn" ? &c.vwn : nullptr;
    }
    if (field == nullptr) fail("unknown key '" + key + "' for " + kernel);
    *field = value;
  }
  const std::string why = kernel == "packed" ? invalid_reason(config.packed) : invalid_reason(config.tiled);
  if (!why.empty()) fail(why);
}

// ---- attention -------------------------------------------------------------------------

enum class AttentionKernel { rows, tiled };

// kernels/attention/opencl.cl ("rows": forward, and the backward on every device): a
// work-item holds about `accumulators` vectors of vw floats, i.e. accumulators * vw / d
// query rows x d (half as many key rows in dK/dV, which keeps two sets), in groups of
// `group` items. kernels/attention/opencl_tiled.cl ("tiled", forward): groups of tile_q
// query rows, tile_k keys per local-memory tile.
struct AttentionConfig {
  AttentionKernel preferred = AttentionKernel::tiled;
  unsigned vw = 4;
  unsigned accumulators = 8;
  unsigned group = 16;
  unsigned tile_q = 64;
  unsigned tile_k = 32;

  unsigned rows_per_item(unsigned d) const { return std::clamp(accumulators * vw / d, 1u, 8u); }
  unsigned keys_per_item(unsigned d) const { return std::max(1u, rows_per_item(d) / 2); }
};

struct AttentionTableEntry {
  cl_device_type type;  // as in the matmul table
  const char* vendor;
  const char* name;
  AttentionConfig config;
};

inline constexpr AttentionTableEntry attention_table[] = {
    // PoCL on AVX-512: float16 vectors, 16 accumulators (4 rows x 64 at d = 64).
    {CL_DEVICE_TYPE_CPU, "", "skylake-avx512", {AttentionKernel::rows, 16, 16, 1, 64, 32}},
    // Other CPU devices (PoCL on AVX2): float16 vectors (two ymm each), 8 accumulators,
    // 2 query rows per item. PORTA_OPENCL_ATTENTION on a 2-core AMD EPYC (Zen3), porta-bench
    // N512-N4096: forward 53-71 GFLOP/s, backward 43-57, against 29-34 and 31-39 with
    // float8 vectors and 8 accumulators (1 row per item); 16 or 32 accumulators were slower.
    {CL_DEVICE_TYPE_CPU, "", "", {AttentionKernel::rows, 16, 8, 1, 64, 32}},
    // GPUs and anything else: local-memory tiles, 64 rows per group (a starting point,
    // not measured here).
    {0, "", "", {AttentionKernel::tiled, 4, 8, 64, 64, 32}},
};

inline AttentionConfig attention_config(cl_device_type type, std::string_view vendor, std::string_view name) {
  for (const AttentionTableEntry& entry : attention_table) {
    if ((entry.type == 0 || (entry.type & type) != 0) && contains_ignoring_case(vendor, entry.vendor) &&
        contains_ignoring_case(name, entry.name)) {
      return entry.config;
    }
  }
  return {};
}

// $PORTA_OPENCL_ATTENTION (an override for experiments): "kernel=rows vw=16 acc=16
// group=1 tq=64 tk=32"; keys left out keep the table's value.
inline AttentionConfig apply_attention_override(std::string_view text, AttentionConfig config) {
  std::istringstream in{std::string(text)};
  std::string pair;
  auto fail = [&](const std::string& why) {
    throw Error(ErrorKind::invalid_argument, "porta opencl: PORTA_OPENCL_ATTENTION='" + std::string(text) + "': " + why);
  };
  while (in >> pair) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos) fail("expected key=value, got '" + pair + "'");
    const std::string key = pair.substr(0, eq), value = pair.substr(eq + 1);
    if (key == "kernel") {
      if (value != "rows" && value != "tiled") fail("kernel must be rows or tiled");
      config.preferred = value == "rows" ? AttentionKernel::rows : AttentionKernel::tiled;
      continue;
    }
    unsigned number = 0;
    try {
      number = static_cast<unsigned>(std::stoul(value));
    } catch (const std::exception&) {
      fail("expected a number in '" + pair + "'");
    }
    unsigned* field = key == "vw" ? &config.vw : key == "acc" ? &config.accumulators : key == "group" ? &config.group
                    : key == "tq" ? &config.tile_q : key == "tk" ? &config.tile_k : nullptr;
    if (field == nullptr) fail("unknown key '" + key + "'");
    *field = number;
  }
  if (config.vw != 4 && config.vw != 8 && config.vw != 16) fail("vw must be 4, 8 or 16");
  if (config.accumulators < 1 || config.group < 1 || config.tile_q < 1 || config.tile_k < 1) {
    fail("acc, group, tq and tk must be >= 1");
  }
  return config;
}

}  // namespace porta::backend::opencl
