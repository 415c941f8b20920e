// porta_bench.cpp — porta-bench, the head-to-head benchmark: every device porta finds and
// every anchor built in (OpenBLAS, CLBlast), on the standard suite of matmul and attention
// cases, each result checked against a float64 reference. Prints progress as it goes,
// then one table (rates, and ratios to the best anchor of each case) and the first-call
// times; --json writes everything for bench/plot.py. The cases, inputs, references and
// anchors are the Google Benchmark binaries' own (bench/*_case.hpp).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "attention_case.hpp"
#include "matmul_case.hpp"
#include "porta/porta.hpp"
#include "porta_bench.hpp"
#include "roofline.hpp"

namespace {

// References are computed once per case, when the first entry of the case runs.
template <class Reference, class Case>
const Reference& reference_for(const Case& c) {
  static std::map<std::string, std::unique_ptr<Reference>> cache;
  auto& slot = cache[c.label()];
  if (!slot) slot = std::make_unique<Reference>(c);
  return *slot;
}

// An entry's start: builds the runner, times its first call and checks its output.
template <class Runner, class Reference, class Case, class... Args>
std::function<std::unique_ptr<Trial>()> trial_for(const Case& c, Args... args) {
  return [c, args...]() {
    const Reference& reference = reference_for<Reference>(c);
    auto runner = std::make_shared<Runner>(c, args...);
    auto trial = std::make_unique<Trial>();
    const double start = now_s();
    (*runner)();
    trial->first_call_s = now_s() - start;
    trial->check = reference.check(runner->output());
    trial->call = [runner] { (*runner)(); };
    return trial;
  };
}

// Times the trials of one case in turn, a burst of calls each per round (at least a
// quarter of the case's time, or one call), until each has its own time and count. The
// machine is shared and its speed drifts over seconds: timed one after another, an anchor
// measured a minute after porta met other conditions. Bursts rather than single calls,
// and each burst's first call left out when more follow: the thread pools of the
// implementation before (OpenBLAS's, PoCL's, oneTBB's) keep spinning for a while after
// its last call and would slow the next one.
std::vector<std::vector<double>> alternate(const std::vector<Trial*>& trials, const Timing& timing,
                                           std::vector<std::string>& errors) {
  std::vector<std::vector<double>> times(trials.size());
  std::vector<double> spent(trials.size(), 0.0);
  constexpr std::size_t max_calls = 1000;
  auto needs_more = [&](std::size_t k) {
    if (trials[k] == nullptr || !errors[k].empty()) return false;
    return int(times[k].size()) < timing.min_calls || (spent[k] < timing.min_time_s && times[k].size() < max_calls);
  };
  const double burst_s = timing.min_time_s / 4;
  for (bool more = true; more;) {
    more = false;
    for (std::size_t k = 0; k < trials.size(); ++k) {
      if (!needs_more(k)) continue;
      more = true;
      const double burst_start = now_s();
      std::vector<double> burst;
      try {
        do {
          const double start = now_s();
          trials[k]->call();
          burst.push_back(now_s() - start);
        } while (now_s() - burst_start < burst_s && times[k].size() + burst.size() < max_calls);
      } catch (const porta::Error& error) {
        errors[k] = error.what();
      }
      spent[k] += now_s() - burst_start;
      times[k].insert(times[k].end(), burst.begin() + (burst.size() > 1 ? 1 : 0), burst.end());
    }
  }
  return times;
}

struct Suite {
  std::vector<MatmulCase> matmul;
  std::vector<AttentionCase> attention;
};

// transposes: the matmul cases' op(A) op(B) combinations ("nn", "nt", "tn", "tt").
Suite standard_suite(bool quick, const std::vector<std::string>& transposes) {
  Suite suite;
  const std::vector<MatmulCase> shapes =
      quick ? std::vector<MatmulCase>{{1024, 1024, 1024}, {1024, 3072, 768}}
            : std::vector<MatmulCase>{{1024, 1024, 1024}, {2048, 2048, 2048}, {4096, 4096, 4096},
                                      {4096, 3072, 768},  {4096, 768, 3072},  {4096, 2304, 768}};
  for (MatmulCase c : shapes) {
    for (const std::string& t : transposes) {
      c.trans_a = t[0] == 't', c.trans_b = t[1] == 't';
      suite.matmul.push_back(c);
    }
  }
  const std::vector<std::int64_t> lengths = quick ? std::vector<std::int64_t>{512, 1024}
                                                  : std::vector<std::int64_t>{512, 1024, 2048, 4096};
  for (std::int64_t n : lengths) {
    for (bool causal : {false, true}) {
      for (bool backward : {false, true}) suite.attention.push_back({1, 12, n, 64, causal, backward});
    }
  }
  return suite;
}

std::vector<Entry> entries_for(const Suite& suite, const std::vector<porta::Device>& devices) {
  std::vector<Entry> entries;
  auto add = [&](const std::string& op, const std::string& family, const auto& c, const std::string& device,
                 const std::string& impl, std::function<std::unique_ptr<Trial>()> start) {
    entries.push_back({op, family, c.label(), device, impl, entries.size(), c.flops(), c.bytes(), 0, {}, std::move(start)});
  };
  for (const MatmulCase& c : suite.matmul) {
#ifdef PORTA_BENCH_OPENBLAS
    add("matmul", "matmul", c, "cpu", "openblas", trial_for<OpenblasMatmul, MatmulReference>(c));
#endif
    for (const porta::Device& device : devices) {
      add("matmul", "matmul", c, device.id(), "porta",
          trial_for<PortaMatmul, MatmulReference>(c, device, std::string("auto")));
    }
#ifdef PORTA_BENCH_CLBLAST
    for (const porta::Device& device : devices) {
      if (device.info().backend == porta::BackendKind::opencl && device.info().index == 0) {
        add("matmul", "matmul", c, device.id(), "clblast", trial_for<ClblastMatmul, MatmulReference>(c));
      }
    }
#endif
  }
  for (const AttentionCase& c : suite.attention) {
    const std::string family = "attention " + c.direction();
#ifdef PORTA_BENCH_OPENBLAS
    add("attention", family, c, "cpu", "openblas", trial_for<OpenblasAttention, AttentionReference>(c));
#endif
    for (const porta::Device& device : devices) {
      add("attention", family, c, device.id(), "porta",
          trial_for<PortaAttention, AttentionReference>(c, device, std::string("auto")));
      if (!c.backward) {  // porta's own three-step baseline on the device
        add("attention", family, c, device.id(), "unfused",
            trial_for<PortaAttention, AttentionReference>(c, device, std::string("unfused")));
      }
    }
  }
  // Small cases first, so each implementation's rate predicts the next case's time.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.op != b.op ? a.op > b.op : a.work < b.work;  // matmul, then attention
  });
  return entries;
}

// --- the table --------------------------------------------------------------------------

bool is_anchor(const std::string& impl) { return impl == "openblas" || impl == "clblast" || impl == "mpi"; }

// The anchor a case compares with: all-reduce over the local transport compares with
// MPI_Allreduce at the same size, measured in the mpi row.
std::string anchor_key(const std::string& case_label) {
  for (const std::string transport : {" local", " mpi"}) {
    if (case_label.ends_with(transport)) return case_label.substr(0, case_label.size() - transport.size());
  }
  return case_label;
}

std::string column_of(const Result& r) { return is_anchor(r.impl) ? r.impl : r.device; }
std::string row_of(const Result& r) {
  return r.impl == "porta" || is_anchor(r.impl) ? r.case_label : r.case_label + " [" + r.impl + "]";
}

void print_table(const std::vector<Result>& results, const std::vector<std::string>& columns, bool first_call) {
  std::vector<const Result*> in_suite_order;
  for (const Result& r : results) in_suite_order.push_back(&r);
  std::stable_sort(in_suite_order.begin(), in_suite_order.end(),
                   [](const Result* a, const Result* b) { return a->sequence < b->sequence; });
  std::vector<std::string> rows;
  for (const Result* rp : in_suite_order) {
    const Result& r = *rp;
    if (std::find(rows.begin(), rows.end(), row_of(r)) == rows.end()) rows.push_back(row_of(r));
  }
  std::size_t width = 4;
  for (const std::string& row : rows) width = std::max(width, row.size());
  const int cell = first_call ? 10 : 17;
  std::printf("%s\n%-*s", first_call ? "First call in seconds (kernel compilation or setup, and one run):"
                                     : "GFLOP/s, or busbw GB/s for all-reduce (ratio to the best anchor of the case):",
              int(width), "case");
  for (const std::string& column : columns) std::printf(" %*s", cell, column.c_str());
  std::printf("\n");
  for (const std::string& row : rows) {
    double best_anchor = 0;  // of the case: porta's unfused rows compare with the same anchors
    const std::string key = anchor_key(row.substr(0, row.find(" [")));
    for (const Result& r : results) {
      if (anchor_key(r.case_label) == key && is_anchor(r.impl) && r.ran() && r.check.ok) {
        best_anchor = std::max(best_anchor, r.rate());
      }
    }
    std::printf("%-*s", int(width), row.c_str());
    for (const std::string& column : columns) {
      std::string text = "-";
      for (const Result& r : results) {
        if (row_of(r) != row || column_of(r) != column) continue;
        if (!r.ran()) {
          text = "skipped";
        } else if (first_call) {
          text = format("%.2f", r.first_call_s);
        } else {
          text = format("%.1f", r.rate());
          if (best_anchor > 0) text += format(" (%.2fx)", r.rate() / best_anchor);
          if (!r.check.ok) text = "FAIL " + text;
        }
      }
      std::printf(" %*s", cell, text.c_str());
    }
    std::printf("\n");
  }
}

// --- the JSON -------------------------------------------------------------------------

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

// cache_fed: measure_cache_fed_share at the start and at the end of the run.
nlohmann::json machine_json(const std::vector<porta::Device>& devices, const Roofline& roofline,
                            const double (&cache_fed)[2]) {
  nlohmann::json machine = {{"cpu", cpu_model()},
                            {"cores", std::thread::hardware_concurrency()},
                            {"peak_gflops", roofline.peak_gflops},
                            {"bandwidth_gbps", roofline.bandwidth_gbps},
                            {"peak_isa", roofline.isa},
                            {"cache_fed_share_start", cache_fed[0]},
                            {"cache_fed_share_end", cache_fed[1]},
                            {"devices", nlohmann::json::array()}};
  for (const porta::Device& device : devices) {
    const porta::DeviceInfo& info = device.info();
    machine["devices"].push_back({{"id", info.id()},
                                  {"type", std::string(porta::to_string(info.type))},
                                  {"name", info.name},
                                  {"vendor", info.vendor},
                                  {"driver", info.driver},
                                  {"memory_bytes", info.memory_bytes}});
  }
#ifdef PORTA_BENCH_OPENBLAS
  machine["openblas_core"] = openblas_kernels();
#endif
  return machine;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

}  // namespace

nlohmann::json result_json(const Result& r) {
  auto number = [](double value) { return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr); };
  nlohmann::json json = {{"op", r.op},
                         {"case", r.case_label},
                         {"device", r.device == "cpu:0" ? "cpu" : r.device},
                         {"impl", r.impl},
                         {"median_s", number(r.median_s)},
                         {"min_s", number(r.min_s)},
                         {"max_s", number(r.max_s)},
                         {"first_call_s", number(r.first_call_s)},
                         {"bytes", r.bytes},
                         {"rel_err", r.ran() ? number(r.check.rel_err) : nlohmann::json(nullptr)},
                         {"ok", r.ran() && r.check.ok}};
  const nlohmann::json rate = r.ran() ? number(r.rate()) : nlohmann::json(nullptr);
  if (r.collective()) {
    json["gbps"] = rate;  // busbw
    json["ranks"] = r.ranks;
  } else {
    json["gflops"] = rate;
    json["flops"] = r.work;
  }
  if (!r.ran()) json["error"] = r.error;
  return json;
}

Result result_from_json(const nlohmann::json& json) {
  auto number = [](const nlohmann::json& value) { return value.is_null() ? NAN : value.get<double>(); };
  Result r;
  r.op = json.at("op"), r.case_label = json.at("case"), r.device = json.at("device"), r.impl = json.at("impl");
  r.device = r.device == "cpu" ? "cpu:0" : r.device;
  r.median_s = number(json.at("median_s")), r.min_s = number(json.at("min_s")), r.max_s = number(json.at("max_s"));
  r.first_call_s = number(json.at("first_call_s"));
  r.bytes = json.at("bytes");
  r.ranks = json.value("ranks", 0);
  r.work = r.collective() ? r.bytes : json.value("flops", 0.0);
  r.check.rel_err = number(json.at("rel_err"));
  r.check.ok = json.at("ok");
  r.error = json.value("error", "");
  return r;
}

bool matches_any(const std::vector<std::string>& filters, const std::string& text, bool prefix) {
  if (filters.empty()) return true;
  for (const std::string& filter : filters) {
    if (prefix ? (text == filter || text.rfind(filter + ":", 0) == 0) : text.find(filter) != std::string::npos) {
      return true;
    }
  }
  return false;
}

int main(int argc, char** argv) {
#ifdef PORTA_BENCH_OPENBLAS
  give_openblas_its_best_kernel(argv);
#endif
  CLI::App app{"porta-bench: every device and anchor on the standard suite, side by side"};
  bool quick = false, list_only = false;
  std::vector<std::string> ops, device_filters, shape_filters, transposes{"nn"};
  std::string json_path;
  Timing timing{1.0, 3, 8.0};
  app.add_flag("--quick", quick, "the whole suite on smaller cases with fewer calls (under 3 minutes here)");
  app.add_option("--op", ops, "only these ops: matmul, attention, allreduce")
      ->delimiter(',')
      ->check(CLI::IsMember({"matmul", "attention", "allreduce"}));
  app.add_option("--device", device_filters, "only these devices (cpu, opencl, vulkan:0, ...); anchors run on theirs")
      ->delimiter(',');
  app.add_option("--shape", shape_filters, "only cases whose name contains one of these (e.g. 2048x2048, N1024)")
      ->delimiter(',');
  app.add_option("--transposes", transposes, "the matmul cases' op(A) op(B): nn, nt, tn, tt (default nn)")
      ->delimiter(',')
      ->check(CLI::IsMember({"nn", "nt", "tn", "tt"}));
  app.add_option("--json", json_path, "write the machine and every result to this file");
  app.add_option("--min-time", timing.min_time_s, "seconds of calls per case after the first (default 1, quick 0.2)");
  app.add_option("--max-call", timing.max_call_s,
                 "skip a case predicted to take longer per call than this (default 8 s, quick 2 s)");
  app.add_flag("--list", list_only, "list the cases and exit");
  std::string mpi_worker_output;  // set when mpirun starts this program as one rank of the MPI part
  app.add_option("--mpi-worker", mpi_worker_output, "(internal) run the MPI all-reduce part as one rank")->group("");
  CLI11_PARSE(app, argc, argv);
  // A transpose named twice is timed once, where first named.
  std::vector<std::string> distinct_transposes;
  for (const std::string& t : transposes) {
    if (std::find(distinct_transposes.begin(), distinct_transposes.end(), t) == distinct_transposes.end()) {
      distinct_transposes.push_back(t);
    }
  }
  transposes = distinct_transposes;
  if (quick) {
    if (app.count("--min-time") == 0) timing.min_time_s = 0.2;
    if (app.count("--max-call") == 0) timing.max_call_s = 2.0;
    timing.min_calls = 2;
  }

  try {
    if (!mpi_worker_output.empty()) {
      return mpi_worker_main(mpi_worker_output, quick, device_filters, shape_filters, timing);
    }
    std::vector<porta::Device> devices;  // every device, one cpu (the virtual ones share its cores)
    for (const porta::Device& device : porta::devices()) {
      if (device.info().backend == porta::BackendKind::cpu && device.info().index > 0) continue;
      devices.push_back(device);
    }
    std::vector<Entry> entries, suite = entries_for(standard_suite(quick, transposes), devices);
    const std::size_t collectives_start = suite.size();
    for (Entry& entry : allreduce_entries(quick, devices)) {
      entry.sequence += collectives_start;
      suite.push_back(std::move(entry));
    }
    const std::size_t suite_size = suite.size();
    for (Entry& entry : suite) {
      const std::string device = entry.device == "cpu" ? "cpu:0" : entry.device;
      if (!ops.empty() && std::find(ops.begin(), ops.end(), entry.op) == ops.end()) continue;
      if (!matches_any(device_filters, device, true) && !matches_any(device_filters, entry.impl, true)) continue;
      if (!matches_any(shape_filters, entry.case_label, false)) continue;
      entry.device = device;
      entries.push_back(std::move(entry));
    }
    // The MPI part runs in processes of its own, after the rest.
    std::string no_mpi;  // why the MPI cases do not run
    const bool allreduce_wanted = ops.empty() || std::find(ops.begin(), ops.end(), "allreduce") != ops.end();
    if (!allreduce_wanted) {
      no_mpi = "--op leaves out allreduce";
    } else if (mpi_cases(quick, shape_filters).empty()) {
      no_mpi = "no MPI case matches --shape";
    }
    const bool run_mpi = no_mpi.empty() && mpi_available(no_mpi);
    if (entries.empty() && !run_mpi) {
      std::fprintf(stderr, "porta-bench: no case matches the filters (see --list)\n");
      return 2;
    }
    std::printf("porta-bench %s: %zu cases on", PORTA_VERSION_STRING, entries.size());
    for (const porta::Device& device : devices) {
      std::printf(" %s (%s)", device.id().c_str(), device.info().name.c_str());
    }
    std::printf("\n%s\n", run_mpi ? "all-reduce over MPI: 2 processes under mpirun, after the rest"
                                  : ("all-reduce over MPI: not run (" + no_mpi + ")").c_str());
    if (list_only) {
      for (const Entry& e : entries) std::printf("%s %s on %s, %s\n", e.op.c_str(), e.case_label.c_str(), e.device.c_str(), e.impl.c_str());
      return 0;
    }

    const int threads = int(std::thread::hardware_concurrency());
    const Roofline roofline = measure_roofline(threads);
    double cache_fed[2] = {measure_cache_fed_share(threads, roofline), 0.0};
#ifdef PORTA_BENCH_OPENBLAS
    const std::string anchor_kernels = "; OpenBLAS's kernels: " + openblas_kernels();
#else
    const std::string anchor_kernels;
#endif
    std::printf("machine: %s, %d threads; measured roofs: %.0f GFLOP/s f32 (%s), %.1f GB/s memory; "
                "a cache-fed FMA loop at %.0f%% of that peak%s\n\n",
                cpu_model().c_str(), threads, roofline.peak_gflops, roofline.isa.c_str(), roofline.bandwidth_gbps,
                100 * cache_fed[0], anchor_kernels.c_str());
    std::fflush(stdout);

    std::vector<Result> results;
    std::map<std::string, double> rate;  // each implementation's last rate per op family, work per second
    const double start = now_s();
    auto rate_key = [](const Entry& e) { return e.family + "|" + e.device + "|" + e.impl; };
    auto finish = [&](const Entry& e, Result result) {
      result.op = e.op, result.case_label = e.case_label, result.device = e.device, result.impl = e.impl;
      result.work = e.work, result.bytes = e.bytes, result.ranks = e.ranks, result.sequence = e.sequence;
      if (result.ran()) rate[rate_key(e)] = e.work / result.median_s;
      return result;
    };
    // Why an entry is skipped: predicted from its last case's rate to take too long.
    auto too_slow = [&](const Entry& e) -> std::string {
      const std::string key = rate_key(e);
      if (rate.count(key) == 0 || e.work / rate[key] <= timing.max_call_s) return "";
      return format("skipped: about %.0f s per call from the last case's rate (--max-call %.0f)", e.work / rate[key],
                    timing.max_call_s);
    };
    auto progress = [&](std::size_t i, const Entry& e) {
      std::fprintf(stderr, "[%3zu/%zu] %-9s %-36s %-9s %-8s ", i + 1, entries.size(), e.op.c_str(), e.case_label.c_str(),
                   e.device.c_str(), e.impl.c_str());
    };
    for (std::size_t i = 0; i < entries.size();) {
      if (!entries[i].start) {  // measures itself
        const Entry& e = entries[i];
        progress(i, e);
        Result result;
        result.error = too_slow(e);
        if (result.ran()) {
          try {
            result = e.run(timing);
          } catch (const porta::Error& error) {
            result.error = error.what();
          }
        }
        results.push_back(finish(e, result));
        print_progress(results.back());
        ++i;
        continue;
      }
      // The implementations of one case: started one by one, then timed in turn.
      std::size_t end = i + 1;
      while (end < entries.size() && entries[end].start && entries[end].op == entries[i].op &&
             entries[end].case_label == entries[i].case_label) {
        ++end;
      }
      std::vector<std::unique_ptr<Trial>> trials(end - i);
      std::vector<std::string> errors(end - i);
      for (std::size_t k = 0; k < trials.size(); ++k) {
        errors[k] = too_slow(entries[i + k]);
        if (!errors[k].empty()) continue;
        try {
          trials[k] = entries[i + k].start();
        } catch (const porta::Error& error) {
          errors[k] = error.what();
        }
      }
      std::vector<Trial*> ready;
      for (auto& trial : trials) ready.push_back(trial.get());
      std::vector<std::vector<double>> times = alternate(ready, timing, errors);
      for (std::size_t k = 0; k < trials.size(); ++k) {
        Result result;
        result.error = errors[k];
        if (result.ran()) {
          result.first_call_s = trials[k]->first_call_s;
          result.check = trials[k]->check;
          summarise(std::move(times[k]), result);
        }
        trials[k].reset();  // device memory back before the next case
        results.push_back(finish(entries[i + k], result));
        progress(i + k, entries[i + k]);
        print_progress(results.back());
      }
      i = end;
    }
    if (run_mpi) {
      for (Result& result : run_mpi_allreduce(quick, device_filters, shape_filters, timing)) {
        result.sequence += suite_size;  // after every in-process case
        results.push_back(result);
      }
    }

    std::fprintf(stderr, "%zu results in %.0f s\n\n", results.size(), now_s() - start);
    std::fflush(stderr);

    std::vector<std::string> columns;  // devices in discovery order, then the anchors
    for (const porta::Device& device : devices) columns.push_back(device.id());
    for (const char* anchor : {"openblas", "clblast", "mpi"}) {
      for (const Result& r : results) {
        if (r.impl == anchor) {
          columns.push_back(anchor);
          break;
        }
      }
    }
    std::vector<std::string> columns_present;
    for (const std::string& column : columns) {
      for (const Result& r : results) {
        if (column_of(r) == column) {
          columns_present.push_back(column);
          break;
        }
      }
    }
    cache_fed[1] = measure_cache_fed_share(threads, roofline);
    std::printf("\nThe cache-fed FMA loop ran at %.0f%% of the peak at the start and %.0f%% at the end (near 100%%:\n"
                "the cores and their caches were this run's own; far below: another program shared them).\n\n",
                100 * cache_fed[0], 100 * cache_fed[1]);
    print_table(results, columns_present, false);
    std::printf("\n");
    print_table(results, columns_present, true);
    const bool all_ok = std::all_of(results.begin(), results.end(), [](const Result& r) { return !r.ran() || r.check.ok; });
    if (!all_ok) std::printf("\nFAIL marks a result that differs from the float64 reference: never a valid rate.\n");

    if (!json_path.empty()) {
      nlohmann::json json = {{"machine", machine_json(devices, roofline, cache_fed)},
                             {"version", PORTA_VERSION_STRING},
                             {"date", utc_now()},
                             {"quick", quick},
                             {"results", nlohmann::json::array()}};
      for (const Result& r : results) json["results"].push_back(result_json(r));
      std::ofstream(json_path) << json.dump(2) << "\n";
      std::printf("\nwrote %s\n", json_path.c_str());
    }
    return all_ok ? 0 : 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "porta-bench: %s\n", error.what());
    return 1;
  }
}
