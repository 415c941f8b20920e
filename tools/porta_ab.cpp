// porta-ab: is a change to a kernel faster? Two builds of libporta loaded into one process,
// their matmuls (or attention passes) called in turn, call by call.
//
//   porta-ab OLD/libporta.so NEW/libporta.so --matmul 2048x2048x2048 --transposes nn
//   porta-ab OLD/libporta.so NEW/libporta.so --attention 1x12x1024x64 --backward
//
// On a shared machine the speed drifts from one second to the next; runs of two builds'
// binaries in alternation (bench/ab.py) meet different moments, seconds apart. Here the
// two libraries' calls are a call apart (old, new, new, old, ...), and each round's
// speedup compares neighbours. Each library is opened with RTLD_LOCAL and reached through
// the C API only: this program links no porta, so each library's calls to its own symbols
// find its own, and each keeps its own devices and kernels.
#include <dlfcn.h>
#include <porta/porta.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// The C API of one libporta build, resolved from its own file.
struct Library {
  std::string path;
  void* handle = nullptr;
  decltype(&porta_last_error) last_error = nullptr;
  decltype(&porta_device_get) device_get = nullptr;
  decltype(&porta_device_synchronize) synchronize = nullptr;
  decltype(&porta_tensor_from_host) from_host = nullptr;
  decltype(&porta_tensor_to_host) to_host = nullptr;
  decltype(&porta_tensor_free) free = nullptr;
  decltype(&porta_matmul_options_init) options_init = nullptr;
  decltype(&porta_matmul) matmul = nullptr;
  decltype(&porta_matmul_into) matmul_into = nullptr;  // null in builds older than 0.1.1
  decltype(&porta_attention_options_init) attention_options_init = nullptr;
  decltype(&porta_attention_forward) attention_forward = nullptr;
  decltype(&porta_attention_backward) attention_backward = nullptr;

  explicit Library(std::string file) : path(std::move(file)) {
    handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) throw std::runtime_error("cannot load " + path + ": " + dlerror());
    resolve(last_error, "porta_last_error");
    resolve(device_get, "porta_device_get");
    resolve(synchronize, "porta_device_synchronize");
    resolve(from_host, "porta_tensor_from_host");
    resolve(to_host, "porta_tensor_to_host");
    resolve(free, "porta_tensor_free");
    resolve(options_init, "porta_matmul_options_init");
    resolve(matmul, "porta_matmul");
    matmul_into = reinterpret_cast<decltype(matmul_into)>(dlsym(handle, "porta_matmul_into"));
    resolve(attention_options_init, "porta_attention_options_init");
    resolve(attention_forward, "porta_attention_forward");
    resolve(attention_backward, "porta_attention_backward");
  }
  template <class F>
  void resolve(F& function, const char* name) {
    function = reinterpret_cast<F>(dlsym(handle, name));
    if (function == nullptr) throw std::runtime_error(path + " has no " + name + ": not a libporta");
  }
  void check(porta_status status, const char* what) const {
    if (status != PORTA_OK) throw std::runtime_error(path + ": " + what + ": " + last_error());
  }
};

// One library's operands on its device, and a timed call of the op under test.
class Workload {
 public:
  explicit Workload(const Library& library, const std::string& device_name) : lib(library) {
    lib.check(lib.device_get(device_name.c_str(), &device), "device");
  }
  virtual ~Workload() {
    for (porta_tensor t : owned) lib.free(t);
  }
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  // Seconds for one call, the device waited for; `out`, when given, receives its first output.
  double call(std::vector<float>* out = nullptr) {
    const auto start = std::chrono::steady_clock::now();
    porta_tensor result = run();
    lib.check(lib.synchronize(device), "synchronize");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (out != nullptr) lib.check(lib.to_host(result, out->data(), out->size() * sizeof(float)), "output");
    if (std::find(owned.begin(), owned.end(), result) == owned.end()) lib.free(result);
    return seconds;
  }

 protected:
  porta_tensor input(const std::vector<std::int64_t>& shape, const std::vector<float>& host) {
    porta_tensor t = nullptr;
    lib.check(lib.from_host(device, PORTA_F32, shape.data(), std::int32_t(shape.size()), host.data(),
                            host.size() * sizeof(float), &t),
              "input");
    owned.push_back(t);
    return t;
  }
  virtual porta_tensor run() = 0;  // one call; returns its first output (freed after, unless owned), the rest freed

  const Library& lib;
  porta_device device = nullptr;
  std::vector<porta_tensor> owned;  // freed with the workload: its inputs, and the forward's O and LSE for a backward
};

// into: C is allocated once and written by porta_matmul_into on every call, so no call
// pays for a new output's allocation and page faults (both builds must offer it).
class Matmul final : public Workload {
 public:
  Matmul(const Library& library, const std::string& device_name, const std::vector<std::int64_t>& a_shape,
         const std::vector<std::int64_t>& b_shape, const std::vector<float>& a_host, const std::vector<float>& b_host,
         const std::vector<std::int64_t>& c_shape, bool trans_a, bool trans_b, bool into)
      : Workload(library, device_name),
        a(input(a_shape, a_host)),
        b(input(b_shape, b_host)),
        c(into ? input(c_shape, std::vector<float>(std::size_t(c_shape[0] * c_shape[1]))) : nullptr) {
    lib.options_init(&options);
    options.trans_a = trans_a;
    options.trans_b = trans_b;
  }

 private:
  porta_tensor run() override {
    if (c != nullptr) {
      lib.check(lib.matmul_into(a, b, &options, c), "matmul_into");
      return c;
    }
    porta_tensor result = nullptr;
    lib.check(lib.matmul(a, b, &options, &result), "matmul");
    return result;
  }
  porta_tensor a, b, c;
  porta_matmul_options options{};
};

// The forward (returns O) or the backward (returns dQ; O and LSE from one forward first).
class Attention final : public Workload {
 public:
  Attention(const Library& library, const std::string& device_name, const std::vector<std::int64_t>& shape,
            const std::vector<float>& q_host, const std::vector<float>& k_host, const std::vector<float>& v_host,
            const std::vector<float>& grad_host, bool causal, bool backward_pass)
      : Workload(library, device_name),
        q(input(shape, q_host)),
        k(input(shape, k_host)),
        v(input(shape, v_host)),
        grad(input(shape, grad_host)),
        backward(backward_pass) {
    lib.attention_options_init(&options);
    options.causal = causal;
    if (backward) {
      lib.check(lib.attention_forward(q, k, v, &options, &out, &lse), "attention forward");
      owned.push_back(out);
      owned.push_back(lse);
    }
  }

 private:
  porta_tensor run() override {
    if (!backward) {
      porta_tensor o = nullptr, l = nullptr;
      lib.check(lib.attention_forward(q, k, v, &options, &o, &l), "attention forward");
      lib.free(l);
      return o;
    }
    porta_tensor dq = nullptr, dk = nullptr, dv = nullptr;
    lib.check(lib.attention_backward(grad, q, k, v, out, lse, &options, &dq, &dk, &dv), "attention backward");
    lib.free(dk);
    lib.free(dv);
    return dq;
  }
  porta_tensor q, k, v, grad, out = nullptr, lse = nullptr;
  bool backward;
  porta_attention_options options{};
};

std::vector<float> random_values(std::size_t count, std::mt19937& random) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> values(count);
  for (float& x : values) x = uniform(random);
  return values;
}

double quantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  return values[std::size_t(std::lround(q * double(values.size() - 1)))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"porta-ab: two libporta builds in one process, call by call; NEW's speedup over OLD"};
  std::string old_path, new_path, device = "cpu:0", shape = "2048x2048x2048", transposes = "nn", attention;
  bool causal = false, backward = false;
  int rounds = 40;
  app.add_option("old", old_path, "the reference build's libporta.so")->required();
  app.add_option("new", new_path, "the changed build's libporta.so")->required();
  app.add_option("--device", device, "the device both run on (default cpu:0)");
  auto* matmul_option = app.add_option("--matmul", shape, "MxNxK (default 2048x2048x2048)");
  auto* transposes_option = app.add_option("--transposes", transposes, "op(A) op(B): nn, nt, tn or tt (default nn)")
                                ->check(CLI::IsMember({"nn", "nt", "tn", "tt"}));
  auto* attention_option = app.add_option("--attention", attention, "BxHxNxD: time attention instead of matmul")
                               ->excludes(matmul_option)
                               ->excludes(transposes_option);
  app.add_flag("--causal", causal, "causal attention")->needs(attention_option);
  app.add_flag("--backward", backward, "the attention backward (dQ, dK, dV) rather than the forward")
      ->needs(attention_option);
  app.add_option("--rounds", rounds, "rounds of one call each (default 40)")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  long long dims[4] = {};
  char tail = 0;
  const bool is_attention = !attention.empty();
  const int parsed = is_attention ? std::sscanf(attention.c_str(), "%lldx%lldx%lldx%lld%c", &dims[0], &dims[1], &dims[2],
                                                &dims[3], &tail)
                                  : std::sscanf(shape.c_str(), "%lldx%lldx%lld%c", &dims[0], &dims[1], &dims[2], &tail);
  const int wanted = is_attention ? 4 : 3;
  if (parsed != wanted || std::any_of(dims, dims + wanted, [](long long d) { return d < 1; })) {
    std::fprintf(stderr, "porta-ab: %s %s: expected %s, positive integers\n", is_attention ? "--attention" : "--matmul",
                 is_attention ? attention.c_str() : shape.c_str(), is_attention ? "BxHxNxD" : "MxNxK");
    return 2;
  }
  try {
    const Library old_lib(old_path), new_lib(new_path);
    std::mt19937 random(1);
    std::unique_ptr<Workload> old_op, new_op;
    std::size_t output_size = 0;
    double flop = 0;
    std::string label;
    if (is_attention) {
      const std::vector<std::int64_t> qkv{dims[0], dims[1], dims[2], dims[3]};
      const std::size_t count = std::size_t(dims[0] * dims[1] * dims[2] * dims[3]);
      const std::vector<float> q = random_values(count, random), k = random_values(count, random),
                               v = random_values(count, random), grad = random_values(count, random);
      old_op = std::make_unique<Attention>(old_lib, device, qkv, q, k, v, grad, causal, backward);
      new_op = std::make_unique<Attention>(new_lib, device, qkv, q, k, v, grad, causal, backward);
      output_size = count;
      flop = 4.0 * double(dims[0] * dims[1]) * double(dims[2]) * double(dims[2]) * double(dims[3]) *
             (causal ? 0.5 : 1.0) * (backward ? 2.5 : 1.0);  // the benchmarks' count
      label = "attention B" + std::to_string(dims[0]) + " H" + std::to_string(dims[1]) + " N" + std::to_string(dims[2]) +
              " D" + std::to_string(dims[3]) + (causal ? " causal" : "") + (backward ? " bwd" : " fwd");
    } else {
      const long long m = dims[0], n = dims[1], k = dims[2];
      const bool trans_a = transposes[0] == 't', trans_b = transposes[1] == 't';
      const std::vector<float> a = random_values(std::size_t(m * k), random), b = random_values(std::size_t(k * n), random);
      const std::vector<std::int64_t> a_shape = trans_a ? std::vector<std::int64_t>{k, m} : std::vector<std::int64_t>{m, k};
      const std::vector<std::int64_t> b_shape = trans_b ? std::vector<std::int64_t>{n, k} : std::vector<std::int64_t>{k, n};
      const bool into = old_lib.matmul_into != nullptr && new_lib.matmul_into != nullptr;  // else both allocate
      old_op = std::make_unique<Matmul>(old_lib, device, a_shape, b_shape, a, b, std::vector<std::int64_t>{m, n}, trans_a,
                                        trans_b, into);
      new_op = std::make_unique<Matmul>(new_lib, device, a_shape, b_shape, a, b, std::vector<std::int64_t>{m, n}, trans_a,
                                        trans_b, into);
      output_size = std::size_t(m * n);
      flop = 2.0 * double(m) * double(n) * double(k);
      label = shape + " " + transposes + (into ? "" : " (a new C per call: a build predates porta_matmul_into)");
    }

    // First calls (kernel builds, pools, page faults) apart; then the two builds agree?
    std::vector<float> old_out(output_size), new_out(output_size);
    old_op->call(&old_out);
    new_op->call(&new_out);
    double largest = 0, difference = 0;
    for (std::size_t i = 0; i < output_size; ++i) {
      largest = std::max(largest, double(std::fabs(old_out[i])));
      difference = std::max(difference, double(std::fabs(old_out[i] - new_out[i])));
    }
    if (!(difference <= 1e-3 * largest)) {  // NaN fails too
      std::fprintf(stderr, "porta-ab: the builds disagree: max |new - old| = %g, max |old| = %g\n", difference, largest);
      return 1;
    }

    std::vector<double> speedups, old_times, new_times;
    for (int round = 0; round < rounds; ++round) {  // old first in even rounds, new first in odd ones
      double old_s, new_s;
      if (round % 2 == 0) {
        old_s = old_op->call();
        new_s = new_op->call();
      } else {
        new_s = new_op->call();
        old_s = old_op->call();
      }
      speedups.push_back(old_s / new_s);
      old_times.push_back(old_s);
      new_times.push_back(new_s);
    }
    std::printf("%s f32 on %s, %d rounds: NEW's speedup over OLD (old time / new time) median %.3f, "
                "quartiles %.3f %.3f, range %.3f %.3f; median GFLOP/s old %.1f, new %.1f; max |new - old| %.2g of %.2g\n",
                label.c_str(), device.c_str(), rounds, quantile(speedups, 0.5), quantile(speedups, 0.25),
                quantile(speedups, 0.75), quantile(speedups, 0.0), quantile(speedups, 1.0),
                flop / quantile(old_times, 0.5) / 1e9, flop / quantile(new_times, 0.5) / 1e9, difference, largest);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "porta-ab: %s\n", error.what());
    return 1;
  }
  return 0;
}
