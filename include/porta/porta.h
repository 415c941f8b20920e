/* porta.h — porta's C API: devices, tensors, matmul and attention from C or any language
 * with a C FFI. Pure C (C99 and later, and C++). ABI promise: see README.md, "C API".
 *
 * Conventions:
 * - Every function returns a porta_status; PORTA_OK (0) is success. On failure the
 *   outputs are left untouched and porta_last_error() holds a message for this thread.
 * - No C++ exception ever leaves a function of this header.
 * - Handles are opaque. A tensor handle that was freed, or that porta never gave out, is
 *   reported as PORTA_ERROR_INVALID_HANDLE (never dereferenced). Device handles stay valid
 *   until the process exits and are never freed.
 * - Option structs start with struct_size: initialise them with their *_init function,
 *   which sets it, so later versions can append fields without breaking old callers. */
#ifndef PORTA_PORTA_H
#define PORTA_PORTA_H

#include <stddef.h>
#include <stdint.h>

#include "porta/export.h"
#include "porta/version.hpp" /* PORTA_VERSION_MAJOR/MINOR/PATCH/STRING: plain C macros */

#ifdef __cplusplus
#define PORTA_NOEXCEPT noexcept
extern "C" {
#else
#define PORTA_NOEXCEPT
#endif

/* ---- status and errors ------------------------------------------------------------- */

/* Enumerations travel as int32_t (their size never depends on the compiler); the values
 * are part of the ABI and are only ever added to. */
typedef int32_t porta_status;
enum porta_status_code {
  PORTA_OK = 0,
  PORTA_ERROR_INVALID_ARGUMENT = 1, /* a null pointer, a wrong size, a shape the op cannot take */
  PORTA_ERROR_UNSUPPORTED = 2,      /* valid, but this device or build cannot do it */
  PORTA_ERROR_OUT_OF_MEMORY = 3,    /* device or host memory exhausted */
  PORTA_ERROR_BACKEND = 4,          /* the OpenCL/Vulkan runtime failed */
  PORTA_ERROR_DEVICE_LOST = 5,      /* the device stopped answering */
  PORTA_ERROR_INVALID_HANDLE = 6,   /* a null, freed or foreign handle */
  PORTA_ERROR_INTERNAL = 7          /* a bug in porta: please report the message */
};

/* The message of the last call that failed on this thread ("" if none has). Valid until
 * the next failing call on this thread; successful calls leave it unchanged. */
PORTA_API const char* porta_last_error(void) PORTA_NOEXCEPT;
/* "PORTA_OK", "PORTA_ERROR_INVALID_ARGUMENT", ...; "unknown porta_status" otherwise. */
PORTA_API const char* porta_status_name(porta_status status) PORTA_NOEXCEPT;
/* The version of the library loaded at run time (PORTA_VERSION_* are the header's). */
PORTA_API void porta_version(int* major, int* minor, int* patch) PORTA_NOEXCEPT;

/* ---- devices ----------------------------------------------------------------------- */

typedef struct porta_device_handle* porta_device;

typedef int32_t porta_dtype;
enum porta_dtype_code { PORTA_F32 = 0, PORTA_F16 = 1, PORTA_BF16 = 2, PORTA_I32 = 3 };
typedef int32_t porta_backend;
enum porta_backend_code { PORTA_BACKEND_CPU = 0, PORTA_BACKEND_OPENCL = 1, PORTA_BACKEND_VULKAN = 2 };
typedef int32_t porta_device_type;
enum porta_device_type_code {
  PORTA_DEVICE_CPU = 0,
  PORTA_DEVICE_DISCRETE_GPU = 1,
  PORTA_DEVICE_INTEGRATED_GPU = 2,
  PORTA_DEVICE_VIRTUAL_GPU = 3,
  PORTA_DEVICE_ACCELERATOR = 4,
  PORTA_DEVICE_OTHER = 5
};

typedef struct porta_device_info {
  size_t struct_size; /* sizeof(porta_device_info), set by porta_device_info_init */
  /* Strings are owned by porta and live as long as the device handle (the process). */
  const char* id;     /* "cpu:0", "opencl:1", "vulkan:0": what porta_device_get takes */
  const char* name;
  const char* vendor;
  const char* driver;
  porta_backend backend;
  int32_t index; /* among the devices of its backend */
  porta_device_type type;
  uint64_t memory_bytes;
  uint64_t max_allocation_bytes; /* the largest single tensor */
  uint32_t compute_units;
  uint32_t max_work_group_size;
  uint32_t subgroup_size; /* 0: the API does not say */
  int32_t fp16;           /* nonzero: f16 and bf16 tensors work on this device */
} porta_device_info;

PORTA_API void porta_device_info_init(porta_device_info* info) PORTA_NOEXCEPT;

/* Every device of every backend built in, cpu first (porta::devices()). */
PORTA_API porta_status porta_device_count(size_t* count) PORTA_NOEXCEPT;
PORTA_API porta_status porta_device_at(size_t index, porta_device* device) PORTA_NOEXCEPT;
/* By name: "cpu", "cpu:1", "opencl:0", "vulkan" (no index: index 0). */
PORTA_API porta_status porta_device_get(const char* name, porta_device* device) PORTA_NOEXCEPT;
/* $PORTA_DEVICE if set, else the best device present. */
PORTA_API porta_status porta_device_default(porta_device* device) PORTA_NOEXCEPT;
/* info->struct_size must be set (porta_device_info_init). */
PORTA_API porta_status porta_device_get_info(porta_device device, porta_device_info* info) PORTA_NOEXCEPT;
/* Waits for everything queued on the device. */
PORTA_API porta_status porta_device_synchronize(porta_device device) PORTA_NOEXCEPT;

/* ---- tensors ----------------------------------------------------------------------- */

typedef struct porta_tensor_handle* porta_tensor;

#define PORTA_MAX_RANK 8

/* Copies `bytes` bytes of row-major host data into a new tensor of `shape` (rank 0 to
 * PORTA_MAX_RANK; shape may be NULL when rank is 0). bytes must equal the element count
 * times the dtype's size (2 for f16/bf16, given as their bit patterns; 4 otherwise). */
PORTA_API porta_status porta_tensor_from_host(porta_device device, porta_dtype dtype, const int64_t* shape,
                                              int32_t rank, const void* data, size_t bytes,
                                              porta_tensor* tensor) PORTA_NOEXCEPT;
/* Waits for the device, then copies the elements out in row-major order; bytes must
 * equal porta_tensor_nbytes. */
PORTA_API porta_status porta_tensor_to_host(porta_tensor tensor, void* data, size_t bytes) PORTA_NOEXCEPT;
/* Any output pointer may be NULL. shape, when not NULL, receives rank values and must
 * have room for PORTA_MAX_RANK. */
PORTA_API porta_status porta_tensor_info(porta_tensor tensor, porta_dtype* dtype, int32_t* rank, int64_t* shape,
                                         porta_device* device) PORTA_NOEXCEPT;
PORTA_API porta_status porta_tensor_nbytes(porta_tensor tensor, size_t* bytes) PORTA_NOEXCEPT;
/* Releases the handle (device memory goes when no queued work uses it). NULL is a no-op;
 * a handle freed twice is PORTA_ERROR_INVALID_HANDLE. */
PORTA_API porta_status porta_tensor_free(porta_tensor tensor) PORTA_NOEXCEPT;

/* ---- matmul: out = epilogue(alpha * op(a) * op(b) + beta * out + bias) ------------- */

typedef int32_t porta_epilogue;
enum porta_epilogue_code { PORTA_EPILOGUE_NONE = 0, PORTA_EPILOGUE_GELU = 1 };

typedef struct porta_matmul_options {
  size_t struct_size;      /* set by porta_matmul_options_init */
  int32_t trans_a;         /* nonzero: a is [.., K, M] and op(a) = a^T */
  int32_t trans_b;         /* nonzero: b is [.., N, K] and op(b) = b^T */
  float alpha;             /* default 1 */
  porta_tensor bias;       /* NULL, or [N] added to every row before the epilogue */
  porta_epilogue epilogue; /* GELU: GPT-2's tanh approximation */
  float beta;              /* porta_matmul_into only: scales c's previous contents; default 0
                            * (appended in 0.1.1, in what was padding: the size is unchanged) */
} porta_matmul_options;

PORTA_API void porta_matmul_options_init(porta_matmul_options* options) PORTA_NOEXCEPT;

/* a: [M, K] or [batch, M, K], b: [K, N] or [batch, K, N] (before the transposes); f32,
 * f16 or bf16, f32 accumulation. options may be NULL (the defaults). *out is a new
 * [batch?, M, N] tensor to free with porta_tensor_free. */
PORTA_API porta_status porta_matmul(porta_tensor a, porta_tensor b, const porta_matmul_options* options,
                                    porta_tensor* out) PORTA_NOEXCEPT;
/* The same into an existing tensor c, which options->beta scales (sgemm's C = alpha A B +
 * beta C, with the bias and epilogue after it): c is [batch?, M, N] on a's device, f32 or
 * the operands' dtype (so f16/bf16 operands can give f32 results), and overlaps none of
 * a, b and the bias. With beta 0, c's previous contents are not read (NaN included).
 * Nothing is allocated for the output. */
PORTA_API porta_status porta_matmul_into(porta_tensor a, porta_tensor b, const porta_matmul_options* options,
                                         porta_tensor c) PORTA_NOEXCEPT;
/* Training: the gradients of porta_matmul(a, b, options) (beta 0) given grad_out, the
 * gradient of its output (GELU's backward is applied first, from the recomputed
 * pre-activation). *da is like a, *db like b (summed over the batch when b was
 * broadcast), *dbias [N] in the bias's dtype; dbias is required when options->bias is set
 * and may be NULL otherwise (then nothing is written to it). */
PORTA_API porta_status porta_matmul_backward(porta_tensor grad_out, porta_tensor a, porta_tensor b,
                                             const porta_matmul_options* options, porta_tensor* da,
                                             porta_tensor* db, porta_tensor* dbias) PORTA_NOEXCEPT;

/* ---- attention (fused, O(N) memory) ------------------------------------------------ */

typedef struct porta_attention_options {
  size_t struct_size; /* set by porta_attention_options_init */
  int32_t causal;     /* nonzero: query i sees keys j <= i + Nk - Nq */
  int32_t has_scale;  /* zero: scale = 1 / sqrt(D) */
  float scale;
} porta_attention_options;

PORTA_API void porta_attention_options_init(porta_attention_options* options) PORTA_NOEXCEPT;

/* q: [B, Hq, Nq, D]; k, v: [B, Hkv, Nk, D], Hq a multiple of Hkv; D in {32, 64, 80, 96,
 * 128}. *out is [B, Hq, Nq, D] (q's dtype), *lse [B, Hq, Nq] f32 (keep both for the
 * backward). options may be NULL. */
PORTA_API porta_status porta_attention_forward(porta_tensor q, porta_tensor k, porta_tensor v,
                                               const porta_attention_options* options, porta_tensor* out,
                                               porta_tensor* lse) PORTA_NOEXCEPT;
/* Gradients given dO (like out) and the forward's out and lse, with the same options. */
PORTA_API porta_status porta_attention_backward(porta_tensor grad_out, porta_tensor q, porta_tensor k,
                                                porta_tensor v, porta_tensor out, porta_tensor lse,
                                                const porta_attention_options* options, porta_tensor* dq,
                                                porta_tensor* dk, porta_tensor* dv) PORTA_NOEXCEPT;

/* ---- collectives ------------------------------------------------------------------
 * Later additions are appended after these: entries never move or change. Tensors must
 * be contiguous; every rank's result has the same bits. f32, and f16/bf16 accumulated
 * in f32. */
typedef int32_t porta_reduce;
enum porta_reduce_code { PORTA_REDUCE_SUM = 0, PORTA_REDUCE_AVG = 1, PORTA_REDUCE_MAX = 2, PORTA_REDUCE_MIN = 3 };

/* In one process: tensors[i] is rank i's tensor, on its own device (any mix of backends;
 * a device may appear twice). Each is replaced by op over all of them; porta runs the
 * ranks on its own threads and returns when all are done. */
PORTA_API porta_status porta_all_reduce_local(const porta_tensor* tensors, size_t count,
                                              porta_reduce op) PORTA_NOEXCEPT;
/* Across processes over MPI (this process is one rank of MPI_COMM_WORLD, MPI started on
 * first use): tensor, on this rank's device, is replaced by op over every rank's.
 * PORTA_ERROR_UNSUPPORTED when porta was built without MPI. */
PORTA_API porta_status porta_all_reduce_mpi(porta_tensor tensor, porta_reduce op) PORTA_NOEXCEPT;
/* This process's rank and the number of ranks, as porta_all_reduce_mpi sees them. */
PORTA_API porta_status porta_mpi_rank(int32_t* rank, int32_t* size) PORTA_NOEXCEPT;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PORTA_PORTA_H */
