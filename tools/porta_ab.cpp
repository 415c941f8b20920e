// porta-ab: is a change to a kernel faster? Two builds of libporta loaded into one process,
// their matmuls called in turn, call by call.
//
//   porta-ab OLD/libporta.so NEW/libporta.so --matmul 2048x2048x2048 --transposes nn
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

// One library's operands on its device, and a timed call.
struct Matmul {
  const Library& lib;
  porta_device device = nullptr;
  porta_tensor a = nullptr, b = nullptr;
  porta_matmul_options options{};

  Matmul(const Library& library, const std::string& device_name, const std::vector<std::int64_t>& a_shape,
         const std::vector<std::int64_t>& b_shape, const std::vector<float>& a_host, const std::vector<float>& b_host,
         bool trans_a, bool trans_b)
      : lib(library) {
    lib.check(lib.device_get(device_name.c_str(), &device), "device");
    lib.check(lib.from_host(device, PORTA_F32, a_shape.data(), 2, a_host.data(), a_host.size() * sizeof(float), &a), "A");
    lib.check(lib.from_host(device, PORTA_F32, b_shape.data(), 2, b_host.data(), b_host.size() * sizeof(float), &b), "B");
    lib.options_init(&options);
    options.trans_a = trans_a;
    options.trans_b = trans_b;
  }
  ~Matmul() {
    lib.free(a);
    lib.free(b);
  }
  Matmul(const Matmul&) = delete;
  Matmul& operator=(const Matmul&) = delete;

  // Seconds for one product, the device waited for; `out`, when given, receives C.
  double call(std::vector<float>* out = nullptr) {
    porta_tensor c = nullptr;
    const auto start = std::chrono::steady_clock::now();
    lib.check(lib.matmul(a, b, &options, &c), "matmul");
    lib.check(lib.synchronize(device), "synchronize");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (out != nullptr) lib.check(lib.to_host(c, out->data(), out->size() * sizeof(float)), "C");
    lib.free(c);
    return seconds;
  }
};

double quantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  return values[std::size_t(std::lround(q * double(values.size() - 1)))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"porta-ab: two libporta builds' matmuls in one process, call by call; NEW's speedup over OLD"};
  std::string old_path, new_path, device = "cpu:0", shape = "2048x2048x2048", transposes = "nn";
  int rounds = 40;
  app.add_option("old", old_path, "the reference build's libporta.so")->required();
  app.add_option("new", new_path, "the changed build's libporta.so")->required();
  app.add_option("--device", device, "the device both run on (default cpu:0)");
  app.add_option("--matmul", shape, "MxNxK (default 2048x2048x2048)");
  app.add_option("--transposes", transposes, "op(A) op(B): nn, nt, tn or tt (default nn)")
      ->check(CLI::IsMember({"nn", "nt", "tn", "tt"}));
  app.add_option("--rounds", rounds, "rounds of one call each (default 40)")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  long long m = 0, n = 0, k = 0;
  char tail = 0;
  if (std::sscanf(shape.c_str(), "%lldx%lldx%lld%c", &m, &n, &k, &tail) != 3 || m < 1 || n < 1 || k < 1) {
    std::fprintf(stderr, "porta-ab: --matmul %s: expected MxNxK, three positive integers\n", shape.c_str());
    return 2;
  }
  const bool trans_a = transposes[0] == 't', trans_b = transposes[1] == 't';
  try {
    const Library old_lib(old_path), new_lib(new_path);
    std::mt19937 random(1);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    std::vector<float> a_host(std::size_t(m * k)), b_host(std::size_t(k * n));
    for (float& x : a_host) x = uniform(random);
    for (float& x : b_host) x = uniform(random);
    const std::vector<std::int64_t> a_shape = trans_a ? std::vector<std::int64_t>{k, m} : std::vector<std::int64_t>{m, k};
    const std::vector<std::int64_t> b_shape = trans_b ? std::vector<std::int64_t>{n, k} : std::vector<std::int64_t>{k, n};
    Matmul old_mm(old_lib, device, a_shape, b_shape, a_host, b_host, trans_a, trans_b);
    Matmul new_mm(new_lib, device, a_shape, b_shape, a_host, b_host, trans_a, trans_b);

    // First calls (kernel builds, pools, page faults) apart; then the two builds agree?
    std::vector<float> old_c(std::size_t(m * n)), new_c(std::size_t(m * n));
    old_mm.call(&old_c);
    new_mm.call(&new_c);
    double largest = 0, difference = 0;
    for (std::size_t i = 0; i < old_c.size(); ++i) {
      largest = std::max(largest, double(std::fabs(old_c[i])));
      difference = std::max(difference, double(std::fabs(old_c[i] - new_c[i])));
    }
    if (!(difference <= 1e-3 * largest)) {  // NaN fails too
      std::fprintf(stderr, "porta-ab: the builds disagree: max |new - old| = %g, max |old| = %g\n", difference, largest);
      return 1;
    }

    std::vector<double> speedups, old_times, new_times;
    for (int round = 0; round < rounds; ++round) {  // old first in even rounds, new first in odd ones
      double old_s, new_s;
      if (round % 2 == 0) {
        old_s = old_mm.call();
        new_s = new_mm.call();
      } else {
        new_s = new_mm.call();
        old_s = old_mm.call();
      }
      speedups.push_back(old_s / new_s);
      old_times.push_back(old_s);
      new_times.push_back(new_s);
    }
    const double flop = 2.0 * double(m) * double(n) * double(k);
    std::printf("%lldx%lldx%lld %s f32 on %s, %d rounds: NEW's speedup over OLD (old time / new time) median %.3f, "
                "quartiles %.3f %.3f, range %.3f %.3f; median GFLOP/s old %.1f, new %.1f; max |new - old| %.2g of %.2g\n",
                m, n, k, transposes.c_str(), device.c_str(), rounds, quantile(speedups, 0.5), quantile(speedups, 0.25),
                quantile(speedups, 0.75), quantile(speedups, 0.0), quantile(speedups, 1.0),
                flop / quantile(old_times, 0.5) / 1e9, flop / quantile(new_times, 0.5) / 1e9, difference, largest);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "porta-ab: %s\n", error.what());
    return 1;
  }
  return 0;
}
