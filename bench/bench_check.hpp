// bench_check.hpp — how a benchmark decides that a run's output is right: the relative
// error ‖got − want‖/‖want‖ against a float64 reference, and a bound it must meet. A NaN
// or infinity anywhere fails, whatever the bound.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

struct Check {
  double rel_err = 0;
  bool ok = false;
};

inline Check compare(const std::vector<double>& got, const std::vector<double>& want, double bound) {
  double error = 0, norm = 0;
  bool finite = got.size() == want.size();
  for (std::size_t i = 0; finite && i < got.size(); ++i) {
    finite = std::isfinite(got[i]);
    error += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  Check check;
  check.rel_err = finite ? std::sqrt(error / (norm > 0 ? norm : 1)) : INFINITY;
  check.ok = finite && check.rel_err <= bound;
  return check;
}

// A few indices spread over [0, n): both ends and the middle, where tiles have edges.
inline std::vector<std::int64_t> sampled_indices(std::int64_t n, int count = 8) {
  std::vector<std::int64_t> indices;
  for (int s = 0; s < count; ++s) {
    const std::int64_t i = count == 1 ? 0 : (n - 1) * s / (count - 1);
    if (indices.empty() || indices.back() != i) indices.push_back(i);
  }
  return indices;
}
