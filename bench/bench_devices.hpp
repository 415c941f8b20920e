// bench_devices.hpp — which devices a benchmark run covers ($PORTA_BENCH_DEVICES).
#pragma once

#include <cstdlib>
#include <string>

// True when $PORTA_BENCH_DEVICES is unset or names the backend of `device_id`
// ("cpu,opencl" selects cpu:0 and opencl:0).
inline bool wanted(const std::string& device_id) {
  const char* only = std::getenv("PORTA_BENCH_DEVICES");
  return only == nullptr || std::string(only).find(device_id.substr(0, device_id.find(':'))) != std::string::npos;
}
