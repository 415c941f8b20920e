// main.cpp — the pkg-config consumer: porta's version and its devices, via porta::devices().
#include <porta/porta.hpp>

#include <cstdio>

int main() {
  try {
    std::printf("porta %s, built with pkg-config\n", PORTA_VERSION_STRING);
    for (const porta::Device& device : porta::devices()) {
      porta::Tensor ones = porta::full({3, 5}, 1.0, porta::f32, device);
      const float total = porta::sum(ones).to_host<float>()[0];
      std::printf("%-9s %s: sum of 15 ones = %g\n", device.id().c_str(), device.info().name.c_str(), total);
      if (total != 15.0f) return 1;
    }
    return 0;
  } catch (const porta::Error& error) {
    std::fprintf(stderr, "porta error: %s\n", error.what());
    return 1;
  }
}
