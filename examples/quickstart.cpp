// quickstart.cpp — the README's API example, compiled and run by the tests.
#include <porta/porta.hpp>

#include <cstdio>

int main() {
  try {
    porta::Device device = porta::Device::default_device();  // or Device::get("vulkan:0"), or $PORTA_DEVICE
    porta::Tensor a = porta::randn({256, 64}, porta::f32, device, /*seed=*/1);
    porta::Tensor b = porta::uniform({256, 64}, porta::f32, device, /*seed=*/2);
    porta::Tensor c = porta::axpby(2.0f, a, -1.0f, b);          // 2a - b, queued on the device
    porta::Tensor column_sums = porta::sum(c, /*dim=*/0);        // shape [64]
    std::vector<float> host = column_sums.to_host<float>();     // waits for the device
    std::printf("%s: sum over rows of 2a - b, first column: %.4f\n", device.id().c_str(), host[0]);
    return 0;
  } catch (const porta::Error& error) {
    std::fprintf(stderr, "porta error (%s): %s\n", std::string(porta::to_string(error.kind())).c_str(), error.what());
    return 1;
  }
}
