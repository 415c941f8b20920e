/* c_api_end_to_end.c — the C API from a C translation unit: tensors in and out, matmul
 * (transposes, bias, GELU; into an existing output with beta; its backward) and attention
 * forward and backward on one device, each checked against a float64 reference written
 * here in C. */
#include "c_api_end_to_end.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "porta/porta.h"

#define F32_EPSILON 1.1920928955078125e-07 /* 2^-23 */

typedef struct Report {
  char* text;
  size_t capacity;
  int result;
} Report;

static void say(Report* report, int result, const char* format, ...) {
  va_list arguments;
  va_start(arguments, format);
  vsnprintf(report->text, report->capacity, format, arguments);
  va_end(arguments);
  report->result = result;
}

/* Fails the check (unsupported: skipped) when a call does not return PORTA_OK. */
#define CALL(call)                                                                                           \
  do {                                                                                                       \
    porta_status status_ = (call);                                                                           \
    if (status_ != PORTA_OK) {                                                                               \
      say(report, status_ == PORTA_ERROR_UNSUPPORTED ? C_API_CHECK_UNSUPPORTED : C_API_CHECK_FAILED,         \
          "line %d: %s returned %s: %s", __LINE__, #call, porta_status_name(status_), porta_last_error());   \
      goto cleanup;                                                                                          \
    }                                                                                                        \
  } while (0)

/* xorshift64*: inputs in [-1, 1) from the seed the caller prints. */
static double next_uniform(uint64_t* state) {
  *state ^= *state >> 12;
  *state ^= *state << 25;
  *state ^= *state >> 27;
  return (double)((*state * 2685821657736338717ull) >> 11) * 0x1p-52 - 1.0;
}

static float* random_floats(size_t count, uint64_t* state) {
  float* values = (float*)malloc(count * sizeof(float) + 1);
  for (size_t i = 0; values != NULL && i < count; ++i) values[i] = (float)next_uniform(state);
  return values;
}

/* ||got - want|| / ||want|| <= bound; NaN and Inf fail. */
static int close_enough(Report* report, const char* what, const float* got, const double* want, size_t count,
                        double bound) {
  double difference = 0, norm = 0;
  for (size_t i = 0; i < count; ++i) {
    const double value = (double)got[i];
    difference += (value - want[i]) * (value - want[i]);
    norm += want[i] * want[i];
  }
  const double error = sqrt(difference / (norm > 0 ? norm : 1e-300));
  if (!(error <= bound)) {
    say(report, C_API_CHECK_FAILED, "%s: relative error %g exceeds %g", what, error, bound);
    return 0;
  }
  return 1;
}

static double gelu(double x) { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }

static double gelu_derivative(double x) {
  const double t = tanh(0.7978845608028654 * (x + 0.044715 * x * x * x));
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
}

static porta_status upload(porta_device device, const float* values, const int64_t* shape, int32_t rank,
                           porta_tensor* tensor) {
  size_t count = 1;
  for (int32_t d = 0; d < rank; ++d) count *= (size_t)shape[d];
  return porta_tensor_from_host(device, PORTA_F32, shape, rank, values, count * sizeof(float), tensor);
}

int c_api_check_matmul(const char* device_name, uint64_t seed, char* text, size_t capacity) {
  Report report_storage = {text, capacity, C_API_CHECK_PASSED};
  Report* report = &report_storage;
  enum { M = 7, K = 13, N = 5 };
  uint64_t state = seed | 1;
  porta_device device = NULL;
  porta_tensor a = NULL, b = NULL, bias = NULL, plain = NULL, fused = NULL, at = NULL, bt = NULL, c = NULL;
  porta_tensor grad = NULL, da = NULL, db = NULL, dbias = NULL;
  float* host_a = random_floats(M * K, &state);
  float* host_b = random_floats(K * N, &state);
  float* host_bias = random_floats(N, &state);
  float* host_c = random_floats(M * N, &state);
  float* host_grad = random_floats(M * N, &state);
  float got[M * N];
  double product[M * N], want[M * N];
  float back[M * K];
  if (host_a == NULL || host_b == NULL || host_bias == NULL || host_c == NULL || host_grad == NULL) {
    say(report, C_API_CHECK_FAILED, "out of host memory");
    goto cleanup;
  }
  CALL(porta_device_get(device_name, &device));
  {
    porta_device_info info;
    porta_device_info_init(&info);
    CALL(porta_device_get_info(device, &info));
    if (strcmp(info.id, device_name) != 0 && strchr(device_name, ':') != NULL) {
      say(report, C_API_CHECK_FAILED, "device '%s' reports id '%s'", device_name, info.id);
      goto cleanup;
    }
  }
  {
    const int64_t shape_a[2] = {M, K}, shape_b[2] = {K, N}, shape_bias[1] = {N};
    CALL(upload(device, host_a, shape_a, 2, &a));
    CALL(upload(device, host_b, shape_b, 2, &b));
    CALL(upload(device, host_bias, shape_bias, 1, &bias));
  }
  /* What goes in comes back bit for bit, with its dtype and shape. */
  {
    porta_dtype dtype = PORTA_I32;
    int32_t rank = 0;
    int64_t shape[PORTA_MAX_RANK] = {0};
    porta_device owner = NULL;
    CALL(porta_tensor_info(a, &dtype, &rank, shape, &owner));
    if (dtype != PORTA_F32 || rank != 2 || shape[0] != M || shape[1] != K || owner != device) {
      say(report, C_API_CHECK_FAILED, "porta_tensor_info: got dtype %d rank %d shape [%lld, %lld]", (int)dtype,
          (int)rank, (long long)shape[0], (long long)shape[1]);
      goto cleanup;
    }
    CALL(porta_tensor_to_host(a, back, sizeof back));
    if (memcmp(back, host_a, sizeof back) != 0) {
      say(report, C_API_CHECK_FAILED, "porta_tensor_to_host did not return what porta_tensor_from_host took");
      goto cleanup;
    }
  }
  /* a b in float64, which every check below starts from */
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < N; ++j) {
      double sum = 0;
      for (int k = 0; k < K; ++k) sum += (double)host_a[i * K + k] * host_b[k * N + j];
      product[i * N + j] = sum;
    }
  }
  /* plain = a b, default options */
  CALL(porta_matmul(a, b, NULL, &plain));
  CALL(porta_tensor_to_host(plain, got, sizeof got));
  for (int i = 0; i < M * N; ++i) want[i] = product[i];
  if (!close_enough(report, "matmul a b", got, want, M * N, (K + 3) * F32_EPSILON)) goto cleanup;

  /* fused = gelu(0.5 a^T' b^T' + bias) with both operands given transposed */
  {
    float host_at[K * M], host_bt[N * K];
    const int64_t shape_at[2] = {K, M}, shape_bt[2] = {N, K};
    porta_matmul_options options;
    for (int i = 0; i < M; ++i) {
      for (int k = 0; k < K; ++k) host_at[k * M + i] = host_a[i * K + k];
    }
    for (int k = 0; k < K; ++k) {
      for (int j = 0; j < N; ++j) host_bt[j * K + k] = host_b[k * N + j];
    }
    CALL(upload(device, host_at, shape_at, 2, &at));
    CALL(upload(device, host_bt, shape_bt, 2, &bt));
    porta_matmul_options_init(&options);
    options.trans_a = 1;
    options.trans_b = 1;
    options.alpha = 0.5f;
    options.bias = bias;
    options.epilogue = PORTA_EPILOGUE_GELU;
    CALL(porta_matmul(at, bt, &options, &fused));
    CALL(porta_tensor_to_host(fused, got, sizeof got));
    for (int i = 0; i < M; ++i) {
      for (int j = 0; j < N; ++j) want[i * N + j] = gelu(0.5 * product[i * N + j] + host_bias[j]);
    }
    /* The GELU's tanh on the device costs a few ulp of its own (tests/matmul_test.cpp). */
    if (!close_enough(report, "matmul gelu(0.5 a b + bias), transposed operands", got, want, M * N,
                      (K + 3 + 64) * F32_EPSILON)) {
      goto cleanup;
    }

    /* Its backward: dz = grad * gelu'(z), z = 0.5 a b + bias; op(a)'s gradient 0.5 dz b^T,
     * op(b)'s 0.5 a^T dz, each returned in its operand's (transposed) layout; dbias the
     * column sums of dz. */
    {
      const int64_t shape_c[2] = {M, N};
      double dz[M * N], want_da[K * M], want_db[N * K], want_dbias[N];
      float got_da[K * M], got_db[N * K], got_dbias[N];
      CALL(upload(device, host_grad, shape_c, 2, &grad));
      CALL(porta_matmul_backward(grad, at, bt, &options, &da, &db, &dbias));
      CALL(porta_tensor_to_host(da, got_da, sizeof got_da));
      CALL(porta_tensor_to_host(db, got_db, sizeof got_db));
      CALL(porta_tensor_to_host(dbias, got_dbias, sizeof got_dbias));
      for (int i = 0; i < M; ++i) {
        for (int j = 0; j < N; ++j) {
          dz[i * N + j] = host_grad[i * N + j] * gelu_derivative(0.5 * product[i * N + j] + host_bias[j]);
        }
      }
      for (int k = 0; k < K; ++k) {
        for (int i = 0; i < M; ++i) {
          double sum = 0;
          for (int j = 0; j < N; ++j) sum += dz[i * N + j] * host_b[k * N + j];
          want_da[k * M + i] = 0.5 * sum;
        }
      }
      for (int j = 0; j < N; ++j) {
        double column = 0;
        for (int k = 0; k < K; ++k) {
          double sum = 0;
          for (int i = 0; i < M; ++i) sum += (double)host_a[i * K + k] * dz[i * N + j];
          want_db[j * K + k] = 0.5 * sum;
        }
        for (int i = 0; i < M; ++i) column += dz[i * N + j];
        want_dbias[j] = column;
      }
      /* dz carries the recomputed pre-activation's rounding through GELU's derivative. */
      if (!close_enough(report, "matmul backward: da", got_da, want_da, K * M, (K + N + 64) * F32_EPSILON) ||
          !close_enough(report, "matmul backward: db", got_db, want_db, N * K, (K + M + 64) * F32_EPSILON) ||
          !close_enough(report, "matmul backward: dbias", got_dbias, want_dbias, N, (K + M + 64) * F32_EPSILON)) {
        goto cleanup;
      }
    }
  }

  /* c = 0.5 a b + 0.75 c + bias into an existing c; then with beta 0 over a c of NaN,
   * which must not be read. */
  {
    const int64_t shape_c[2] = {M, N};
    porta_matmul_options options;
    float nans[M * N];
    CALL(upload(device, host_c, shape_c, 2, &c));
    porta_matmul_options_init(&options);
    options.alpha = 0.5f;
    options.beta = 0.75f;
    options.bias = bias;
    CALL(porta_matmul_into(a, b, &options, c));
    CALL(porta_tensor_to_host(c, got, sizeof got));
    for (int i = 0; i < M; ++i) {
      for (int j = 0; j < N; ++j) want[i * N + j] = 0.5 * product[i * N + j] + 0.75 * host_c[i * N + j] + host_bias[j];
    }
    if (!close_enough(report, "matmul_into 0.5 a b + 0.75 c + bias", got, want, M * N, (K + 5) * F32_EPSILON)) {
      goto cleanup;
    }
    for (int i = 0; i < M * N; ++i) nans[i] = NAN;
    porta_tensor_free(c);
    c = NULL;
    CALL(upload(device, nans, shape_c, 2, &c));
    options.beta = 0.0f;
    CALL(porta_matmul_into(a, b, &options, c));
    CALL(porta_tensor_to_host(c, got, sizeof got));
    for (int i = 0; i < M; ++i) {
      for (int j = 0; j < N; ++j) want[i * N + j] = 0.5 * product[i * N + j] + host_bias[j];
    }
    if (!close_enough(report, "matmul_into beta 0 over NaN", got, want, M * N, (K + 4) * F32_EPSILON)) goto cleanup;
  }
  say(report, C_API_CHECK_PASSED, "ok");

cleanup:
  porta_tensor_free(a);
  porta_tensor_free(b);
  porta_tensor_free(bias);
  porta_tensor_free(plain);
  porta_tensor_free(fused);
  porta_tensor_free(at);
  porta_tensor_free(bt);
  porta_tensor_free(c);
  porta_tensor_free(grad);
  porta_tensor_free(da);
  porta_tensor_free(db);
  porta_tensor_free(dbias);
  free(host_a);
  free(host_b);
  free(host_bias);
  free(host_c);
  free(host_grad);
  return report->result;
}

/* Shapes: grouped heads (2 query heads share one key/value head), Nq != Nk, causal. */
enum { B = 1, HQ = 2, HKV = 1, NQ = 5, NK = 7, D = 32 };

typedef struct AttentionReference {
  double out[B * HQ * NQ * D];
  double lse[B * HQ * NQ];
  double dq[B * HQ * NQ * D];
  double dk[B * HKV * NK * D];
  double dv[B * HKV * NK * D];
} AttentionReference;

static void attention_reference(const float* q, const float* k, const float* v, const float* grad_out, double scale,
                                AttentionReference* r) {
  memset(r, 0, sizeof *r);
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < HQ; ++h) {
      const int hk = h / (HQ / HKV);
      for (int i = 0; i < NQ; ++i) {
        const float* qi = q + ((b * HQ + h) * NQ + i) * D;
        const float* gi = grad_out + ((b * HQ + h) * NQ + i) * D;
        double* oi = r->out + ((b * HQ + h) * NQ + i) * D;
        double* dqi = r->dq + ((b * HQ + h) * NQ + i) * D;
        double scores[NK], p[NK];
        const int last = i + NK - NQ; /* causal, bottom-right aligned */
        double maximum = -INFINITY;
        for (int j = 0; j <= last; ++j) {
          const float* kj = k + ((b * HKV + hk) * NK + j) * D;
          double dot = 0;
          for (int d = 0; d < D; ++d) dot += (double)qi[d] * kj[d];
          scores[j] = scale * dot;
          if (scores[j] > maximum) maximum = scores[j];
        }
        double total = 0;
        for (int j = 0; j <= last; ++j) total += exp(scores[j] - maximum);
        const double lse = maximum + log(total);
        r->lse[(b * HQ + h) * NQ + i] = lse;
        for (int j = 0; j <= last; ++j) {
          const float* vj = v + ((b * HKV + hk) * NK + j) * D;
          p[j] = exp(scores[j] - lse);
          for (int d = 0; d < D; ++d) oi[d] += p[j] * vj[d];
        }
        /* dS = P (dP - rowsum(dO * O)), dP = dO V^T */
        double delta = 0;
        for (int d = 0; d < D; ++d) delta += (double)gi[d] * oi[d];
        for (int j = 0; j <= last; ++j) {
          const float* kj = k + ((b * HKV + hk) * NK + j) * D;
          const float* vj = v + ((b * HKV + hk) * NK + j) * D;
          double* dkj = r->dk + ((b * HKV + hk) * NK + j) * D;
          double* dvj = r->dv + ((b * HKV + hk) * NK + j) * D;
          double dp = 0;
          for (int d = 0; d < D; ++d) dp += (double)gi[d] * vj[d];
          const double ds = p[j] * (dp - delta);
          for (int d = 0; d < D; ++d) {
            dqi[d] += scale * ds * kj[d];
            dkj[d] += scale * ds * qi[d];
            dvj[d] += p[j] * gi[d];
          }
        }
      }
    }
  }
}

int c_api_check_attention(const char* device_name, uint64_t seed, char* text, size_t capacity) {
  Report report_storage = {text, capacity, C_API_CHECK_PASSED};
  Report* report = &report_storage;
  uint64_t state = seed | 1;
  porta_device device = NULL;
  porta_tensor q = NULL, k = NULL, v = NULL, grad_out = NULL, out = NULL, lse = NULL, dq = NULL, dk = NULL, dv = NULL;
  float* host_q = random_floats(B * HQ * NQ * D, &state);
  float* host_k = random_floats(B * HKV * NK * D, &state);
  float* host_v = random_floats(B * HKV * NK * D, &state);
  float* host_grad = random_floats(B * HQ * NQ * D, &state);
  float* got = (float*)malloc(B * HQ * NQ * D * sizeof(float));
  AttentionReference* want = (AttentionReference*)malloc(sizeof(AttentionReference));
  const double scale = 0.25;
  porta_attention_options options;
  if (!host_q || !host_k || !host_v || !host_grad || !got || !want) {
    say(report, C_API_CHECK_FAILED, "out of host memory");
    goto cleanup;
  }
  attention_reference(host_q, host_k, host_v, host_grad, scale, want);
  CALL(porta_device_get(device_name, &device));
  {
    const int64_t shape_q[4] = {B, HQ, NQ, D}, shape_kv[4] = {B, HKV, NK, D};
    CALL(upload(device, host_q, shape_q, 4, &q));
    CALL(upload(device, host_k, shape_kv, 4, &k));
    CALL(upload(device, host_v, shape_kv, 4, &v));
    CALL(upload(device, host_grad, shape_q, 4, &grad_out));
  }
  porta_attention_options_init(&options);
  options.causal = 1;
  options.has_scale = 1;
  options.scale = (float)scale;
  CALL(porta_attention_forward(q, k, v, &options, &out, &lse));
  CALL(porta_tensor_to_host(out, got, B * HQ * NQ * D * sizeof(float)));
  if (!close_enough(report, "attention out", got, want->out, B * HQ * NQ * D, (D + NK + 8) * F32_EPSILON)) goto cleanup;
  CALL(porta_tensor_to_host(lse, got, B * HQ * NQ * sizeof(float)));
  if (!close_enough(report, "attention lse", got, want->lse, B * HQ * NQ, (D + NK + 8) * F32_EPSILON)) goto cleanup;

  CALL(porta_attention_backward(grad_out, q, k, v, out, lse, &options, &dq, &dk, &dv));
  {
    const double bound = (D + NK + NQ + 16) * F32_EPSILON;
    CALL(porta_tensor_to_host(dq, got, B * HQ * NQ * D * sizeof(float)));
    if (!close_enough(report, "attention dq", got, want->dq, B * HQ * NQ * D, bound)) goto cleanup;
    CALL(porta_tensor_to_host(dk, got, B * HKV * NK * D * sizeof(float)));
    if (!close_enough(report, "attention dk", got, want->dk, B * HKV * NK * D, bound)) goto cleanup;
    CALL(porta_tensor_to_host(dv, got, B * HKV * NK * D * sizeof(float)));
    if (!close_enough(report, "attention dv", got, want->dv, B * HKV * NK * D, bound)) goto cleanup;
  }
  say(report, C_API_CHECK_PASSED, "ok");

cleanup:
  porta_tensor_free(q);
  porta_tensor_free(k);
  porta_tensor_free(v);
  porta_tensor_free(grad_out);
  porta_tensor_free(out);
  porta_tensor_free(lse);
  porta_tensor_free(dq);
  porta_tensor_free(dk);
  porta_tensor_free(dv);
  free(host_q);
  free(host_k);
  free(host_v);
  free(host_grad);
  free(got);
  free(want);
  return report->result;
}
