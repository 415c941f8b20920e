// main.cpp — lists porta's devices and runs one small matmul on each, checked exactly
// (small integers), so the installed library's embedded kernels are exercised.
#include <porta/porta.hpp>

#include <cstdio>
#include <vector>

int main() {
  try {
    std::printf("porta %s\n", PORTA_VERSION_STRING);
    int failures = 0;
    for (const porta::Device& device : porta::devices()) {
      const std::vector<float> a = {1, 2, 3, 4, 5, 6};  // [2, 3]
      const std::vector<float> b = {1, 0, 0, 1, 1, 1};  // [3, 2]
      porta::Tensor c = porta::matmul(porta::Tensor::from_host<float>(a, {2, 3}, porta::f32, device),
                                      porta::Tensor::from_host<float>(b, {3, 2}, porta::f32, device));
      const std::vector<float> got = c.to_host<float>();
      const bool ok = got == std::vector<float>{4, 5, 10, 11};
      failures += ok ? 0 : 1;
      std::printf("%-9s %-40s matmul %s\n", device.id().c_str(), device.info().name.c_str(), ok ? "ok" : "WRONG");
    }
    return failures == 0 ? 0 : 1;
  } catch (const porta::Error& error) {
    std::fprintf(stderr, "porta error: %s\n", error.what());
    return 1;
  }
}
