// porta.hpp — the umbrella header: everything a user of porta needs.
#pragma once

#include "porta/attention.hpp"
#include "porta/communicator.hpp"
#include "porta/device.hpp"
#include "porta/dtype.hpp"
#include "porta/error.hpp"
#include "porta/matmul.hpp"
#include "porta/ops.hpp"
#include "porta/tensor.hpp"
#include "porta/version.hpp"
