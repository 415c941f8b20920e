// discover.hpp — the one entry point of each backend: find its devices.
#pragma once

#include "backends/backend.hpp"

namespace porta::backend {

Discovery discover_cpu();     // always one or more ($PORTA_CPU_DEVICES)
Discovery discover_opencl();  // every device of every platform the ICD loader lists
Discovery discover_vulkan();  // every physical device the Vulkan loader lists

}  // namespace porta::backend
