// collectives_test.cpp — the local transport: every collective with 1, 2, 3, 4 and 7
// ranks on virtual cpu devices and on a mixed cpu + opencl + vulkan set, exact integer
// data, random data against float64, bit-identical results, bad input and failing ranks.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "collectives_cases.hpp"

namespace porta::test {
namespace {

constexpr std::int64_t mebi_plus_3 = (1 << 20) + 3;
const std::vector<std::int64_t> sizes = {0, 1, 7, 1023, mebi_plus_3};
const std::vector<Reduce> reductions = {Reduce::sum, Reduce::avg, Reduce::max, Reduce::min};
const std::vector<DType> dtypes = {DType::f32, DType::bf16, DType::f16};

// n ranks on the virtual cpu devices ($PORTA_CPU_DEVICES); with fewer devices than
// ranks, devices are shared (each rank still has tensors of its own).
std::vector<Device> cpu_ranks(int n) {
  std::vector<Device> cpus;
  for (const Device& device : devices()) {
    if (device.info().backend == BackendKind::cpu) cpus.push_back(device);
  }
  std::vector<Device> ranks;
  for (int i = 0; i < n; ++i) ranks.push_back(cpus[static_cast<std::size_t>(i) % cpus.size()]);
  return ranks;
}

// cpu:0, then one device of every other backend present, then cpu:1 if there is one.
std::vector<Device> mixed_ranks() {
  std::vector<Device> ranks = {Device::get("cpu:0")};
  for (const Device& device : devices()) {
    if (device.info().backend != BackendKind::cpu && device.info().index == 0) ranks.push_back(device);
  }
  for (const Device& device : devices()) {
    if (device.info().backend == BackendKind::cpu && device.info().index == 1) ranks.push_back(device);
  }
  return ranks;
}

std::string context(int ranks, DType dtype, std::int64_t size, Reduce op, bool in_place) {
  return std::to_string(ranks) + " ranks, " + std::string(to_string(dtype)) + " x " + std::to_string(size) + ", " +
         std::string(to_string(op)) + (in_place ? ", in place" : ", out of place");
}

// Scoped $PORTA_ALLREDUCE_ALGO (read on every call).
class ForcedAlgorithm {
 public:
  explicit ForcedAlgorithm(const std::string& name) {
    if (name.empty()) {
      unsetenv("PORTA_ALLREDUCE_ALGO");
    } else {
      setenv("PORTA_ALLREDUCE_ALGO", name.c_str(), 1);
    }
  }
  ~ForcedAlgorithm() { unsetenv("PORTA_ALLREDUCE_ALGO"); }
};

// Runs the all-reduce of integer data on `ranks` and returns each rank's difference from
// the exact result ("" when bit-exact).
std::vector<std::string> exact_all_reduce(const std::vector<Communicator>& ranks, DType dtype, std::int64_t size,
                                          Reduce op, bool in_place, int salt) {
  const int n = static_cast<int>(ranks.size());
  const auto expected = integer_expected_bytes(dtype, op, n, 0, static_cast<std::size_t>(size), salt);
  std::vector<std::string> failures(ranks.size());
  run_ranks(ranks, [&](const Communicator& comm) {
    auto input = integer_input(dtype, size, comm.rank(), salt);
    Tensor in = Tensor::from_host(input.data(), input.size(), {size}, dtype, comm.device());
    Tensor out = in_place ? in : Tensor::empty({size}, dtype, comm.device());
    comm.all_reduce(in, out, op);
    failures[static_cast<std::size_t>(comm.rank())] = difference_text(read_bytes(out), expected, dtype);
    if (!in_place && failures[static_cast<std::size_t>(comm.rank())].empty()) {
      // out of place leaves the input alone
      failures[static_cast<std::size_t>(comm.rank())] = difference_text(read_bytes(in), input, dtype);
    }
  });
  return failures;
}

class LocalCollectives : public ::testing::TestWithParam<int> {};

TEST_P(LocalCollectives, AllReduceIntegersBitExact) {
  const int n = GetParam();
  auto ranks = Communicator::local(cpu_ranks(n));
  int salt = 0;
  for (DType dtype : dtypes) {
    for (std::int64_t size : sizes) {
      for (Reduce op : reductions) {
        // The large size runs every reduction in f32, the sum alone in 16 bits.
        if (size == mebi_plus_3 && dtype != DType::f32 && op != Reduce::sum) continue;
        const bool in_place = (++salt % 2) == 0;
        auto failures = exact_all_reduce(ranks, dtype, size, op, in_place, salt);
        for (int r = 0; r < n; ++r) {
          EXPECT_EQ(failures[static_cast<std::size_t>(r)], "") << "rank " << r << ", " << context(n, dtype, size, op, in_place);
        }
      }
    }
  }
}

// The message-based algorithms, which the MPI transport runs, checked in one process.
TEST_P(LocalCollectives, RingAndDoublingBitExact) {
  const int n = GetParam();
  auto ranks = Communicator::local(cpu_ranks(n));
  for (const std::string algorithm : {"ring", "doubling"}) {
    ForcedAlgorithm forced(algorithm);
    EXPECT_EQ(ranks[0].all_reduce_algorithm(4), algorithm);
    int salt = 3;
    for (DType dtype : {DType::f32, DType::bf16}) {
      for (std::int64_t size : {std::int64_t(1), std::int64_t(7), std::int64_t(1023), mebi_plus_3}) {
        for (Reduce op : reductions) {
          if (size == mebi_plus_3 && op != Reduce::sum && op != Reduce::max) continue;
          const bool in_place = (++salt % 2) == 0;
          auto failures = exact_all_reduce(ranks, dtype, size, op, in_place, salt);
          for (int r = 0; r < n; ++r) {
            EXPECT_EQ(failures[static_cast<std::size_t>(r)], "")
                << algorithm << ", rank " << r << ", " << context(n, dtype, size, op, in_place);
          }
        }
      }
    }
  }
}

// Random data: within the tolerance of float64, the same bits on every rank, and the
// same bits again on a rerun, for each algorithm.
TEST_P(LocalCollectives, RandomDataWithinToleranceAndBitIdentical) {
  const int n = GetParam();
  auto ranks = Communicator::local(cpu_ranks(n));
  const std::uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (const std::string algorithm : {"", "ring", "doubling"}) {
    ForcedAlgorithm forced(algorithm);
    for (DType dtype : {DType::f32, DType::bf16}) {
      for (Reduce op : {Reduce::sum, Reduce::avg}) {
        const std::int64_t size = 4099;
        std::vector<std::vector<unsigned char>> inputs;
        for (int r = 0; r < n; ++r) inputs.push_back(random_bytes(dtype, size, seed + static_cast<std::uint64_t>(r)));
        std::vector<std::vector<unsigned char>> results[2];
        for (auto& run : results) {
          run.resize(static_cast<std::size_t>(n));
          run_ranks(ranks, [&](const Communicator& comm) {
            const auto& input = inputs[static_cast<std::size_t>(comm.rank())];
            Tensor tensor = Tensor::from_host(input.data(), input.size(), {size}, dtype, comm.device());
            comm.all_reduce(tensor, op);
            run[static_cast<std::size_t>(comm.rank())] = read_bytes(tensor);
          });
        }
        const std::string where = "algorithm '" + algorithm + "', " + context(n, dtype, size, op, true);
        EXPECT_EQ(check_random_sum(inputs, results[0][0], dtype, op == Reduce::avg), "") << where;
        for (int r = 0; r < n; ++r) {
          EXPECT_TRUE(results[0][static_cast<std::size_t>(r)] == results[0][0]) << where << ": rank " << r << " differs from rank 0";
          EXPECT_TRUE(results[1][static_cast<std::size_t>(r)] == results[0][static_cast<std::size_t>(r)]) << where << ": rerun differs on rank " << r;
        }
      }
    }
  }
}

TEST_P(LocalCollectives, ReduceScatterAllGatherBroadcastBitExact) {
  const int n = GetParam();
  auto ranks = Communicator::local(cpu_ranks(n));
  int salt = 11;
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    // The large case: about 1 MiB + 3 elements of input per rank, cut into n parts.
    const std::int64_t large = mebi_plus_3 / n;
    for (std::int64_t part : {std::int64_t(0), std::int64_t(1), std::int64_t(7), std::int64_t(1023), large}) {
      if (part == large && dtype == DType::f16) continue;
      ++salt;
      for (Reduce op : reductions) {
        if (part == large && op != Reduce::sum) continue;
        const auto full = integer_expected_bytes(dtype, op, n, 0, static_cast<std::size_t>(part) * static_cast<std::size_t>(n), salt);
        std::vector<std::string> failures(static_cast<std::size_t>(n));
        run_ranks(ranks, [&](const Communicator& comm) {
          auto input = integer_input(dtype, part * n, comm.rank(), salt);
          Tensor in = Tensor::from_host(input.data(), input.size(), {part * n}, dtype, comm.device());
          Tensor out = Tensor::empty({part}, dtype, comm.device());
          comm.reduce_scatter(in, out, op);
          const std::size_t bytes = static_cast<std::size_t>(part) * size_of(dtype);
          std::vector<unsigned char> mine(full.begin() + static_cast<std::ptrdiff_t>(bytes * static_cast<std::size_t>(comm.rank())),
                                          full.begin() + static_cast<std::ptrdiff_t>(bytes * static_cast<std::size_t>(comm.rank() + 1)));
          failures[static_cast<std::size_t>(comm.rank())] = difference_text(read_bytes(out), mine, dtype);
        });
        for (int r = 0; r < n; ++r) {
          EXPECT_EQ(failures[static_cast<std::size_t>(r)], "") << "reduce_scatter, rank " << r << ", " << context(n, dtype, part, op, false);
        }
      }
      // all_gather: rank q's part lands at q * part everywhere.
      std::vector<unsigned char> gathered;
      for (int q = 0; q < n; ++q) {
        auto input = integer_input(dtype, part, q, salt);
        gathered.insert(gathered.end(), input.begin(), input.end());
      }
      std::vector<std::string> failures(static_cast<std::size_t>(n));
      run_ranks(ranks, [&](const Communicator& comm) {
        auto input = integer_input(dtype, part, comm.rank(), salt);
        Tensor in = Tensor::from_host(input.data(), input.size(), {part}, dtype, comm.device());
        Tensor out = Tensor::empty({n, part}, dtype, comm.device());
        comm.all_gather(in, out);
        failures[static_cast<std::size_t>(comm.rank())] = difference_text(read_bytes(out), gathered, dtype);
      });
      for (int r = 0; r < n; ++r) EXPECT_EQ(failures[static_cast<std::size_t>(r)], "") << "all_gather, rank " << r;
      // broadcast from the last rank
      const int root = n - 1;
      const auto root_data = integer_input(dtype, part, root, salt);
      run_ranks(ranks, [&](const Communicator& comm) {
        auto input = integer_input(dtype, part, comm.rank(), salt + 1);
        Tensor tensor = Tensor::from_host(comm.rank() == root ? root_data.data() : input.data(), input.size(), {part}, dtype,
                                          comm.device());
        comm.broadcast(tensor, root);
        failures[static_cast<std::size_t>(comm.rank())] = difference_text(read_bytes(tensor), root_data, dtype);
      });
      for (int r = 0; r < n; ++r) EXPECT_EQ(failures[static_cast<std::size_t>(r)], "") << "broadcast, rank " << r;
    }
  }
}

TEST_P(LocalCollectives, BarrierWaitsForEveryRank) {
  const int n = GetParam();
  auto ranks = Communicator::local(cpu_ranks(n));
  std::atomic<int> arrived{0};
  std::atomic<int> early{0};
  run_ranks(ranks, [&](const Communicator& comm) {
    for (int round = 1; round <= 20; ++round) {
      // rank 0 dawdles: nobody may pass the barrier before it arrived
      if (comm.rank() == 0 && round % 5 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      arrived.fetch_add(1);
      comm.barrier();
      if (arrived.load() < round * n) early.fetch_add(1);
      comm.barrier();
    }
  });
  EXPECT_EQ(early.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Ranks, LocalCollectives, ::testing::Values(1, 2, 3, 4, 7),
                         [](const auto& param_info) { return std::to_string(param_info.param) + "_ranks"; });

TEST(LocalCollectivesLarge, AllReduce64MiBBitExact) {
  auto ranks = Communicator::local(cpu_ranks(2));
  const std::int64_t size = 16 << 20;  // 64 MiB of f32 per rank
  auto failures = exact_all_reduce(ranks, DType::f32, size, Reduce::sum, true, 5);
  for (const auto& failure : failures) EXPECT_EQ(failure, "");
}

// cpu tensors are read in place; opencl and vulkan tensors go through host staging.
TEST(LocalCollectivesMixed, EveryOpAcrossBackendsBitExact) {
  auto devices_used = mixed_ranks();
  if (devices_used.size() < 2) GTEST_SKIP() << "one device only";
  auto ranks = Communicator::local(devices_used);
  const int n = static_cast<int>(ranks.size());
  int salt = 21;
  for (DType dtype : {DType::f32, DType::bf16}) {
    for (std::int64_t size : {std::int64_t(7), mebi_plus_3}) {
      for (Reduce op : reductions) {
        const bool in_place = (++salt % 2) == 0;
        auto failures = exact_all_reduce(ranks, dtype, size, op, in_place, salt);
        for (int r = 0; r < n; ++r) {
          EXPECT_EQ(failures[static_cast<std::size_t>(r)], "")
              << ranks[static_cast<std::size_t>(r)].device().id() << ", " << context(n, dtype, size, op, in_place);
        }
      }
      std::vector<unsigned char> gathered;
      for (int q = 0; q < n; ++q) {
        auto input = integer_input(dtype, size, q, salt);
        gathered.insert(gathered.end(), input.begin(), input.end());
      }
      std::vector<std::string> failures(static_cast<std::size_t>(n));
      run_ranks(ranks, [&](const Communicator& comm) {
        auto input = integer_input(dtype, size, comm.rank(), salt);
        Tensor in = Tensor::from_host(input.data(), input.size(), {size}, dtype, comm.device());
        Tensor gathered_out = Tensor::empty({n * size}, dtype, comm.device());
        comm.all_gather(in, gathered_out);
        std::string failure = difference_text(read_bytes(gathered_out), gathered, dtype);
        Tensor scattered = Tensor::empty({size}, dtype, comm.device());
        comm.reduce_scatter(gathered_out, scattered, Reduce::sum);  // n times rank r's part
        auto part = integer_input(dtype, size, comm.rank(), salt);
        for (std::size_t i = 0; i < static_cast<std::size_t>(size); ++i) set_element(part, dtype, i, n * element(part, dtype, i));
        if (failure.empty()) failure = difference_text(read_bytes(scattered), part, dtype);
        comm.broadcast(in, 1);
        if (failure.empty()) failure = difference_text(read_bytes(in), integer_input(dtype, size, 1, salt), dtype);
        failures[static_cast<std::size_t>(comm.rank())] = failure;
      });
      for (int r = 0; r < n; ++r) {
        EXPECT_EQ(failures[static_cast<std::size_t>(r)], "") << ranks[static_cast<std::size_t>(r)].device().id() << ", "
                                                             << to_string(dtype) << " x " << size;
      }
    }
  }
}

// ---- bad input and failing ranks ------------------------------------------------------

// Runs body on 3 ranks; returns each rank's porta::Error message ("" if it threw none).
std::vector<std::string> errors_on_3_ranks(const std::vector<Communicator>& ranks,
                                           const std::function<void(const Communicator&)>& body) {
  std::vector<std::string> messages(ranks.size());
  run_ranks(ranks, [&](const Communicator& comm) {
    try {
      body(comm);
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), ErrorKind::invalid_argument) << error.what();
      messages[static_cast<std::size_t>(comm.rank())] = error.what();
    }
  });
  return messages;
}

void expect_every_rank_fails(const std::vector<std::string>& messages, const std::string& needle) {
  for (std::size_t r = 0; r < messages.size(); ++r) {
    EXPECT_NE(messages[r].find(needle), std::string::npos) << "rank " << r << ": '" << messages[r] << "' lacks '" << needle << "'";
  }
}

TEST(LocalCollectivesErrors, DisagreementsThrowOnEveryRank) {
  auto ranks = Communicator::local(cpu_ranks(3));
  auto tensor_of = [](const Communicator& comm, std::int64_t size, DType dtype = DType::f32) {
    return full({size}, 1.0f, dtype, comm.device());
  };
  expect_every_rank_fails(errors_on_3_ranks(ranks, [&](const Communicator& comm) {
                            Tensor t = tensor_of(comm, comm.rank() == 2 ? 9 : 8);
                            comm.all_reduce(t, Reduce::sum);
                          }),
                          "rank 2 called all_reduce of f32 x 9 (sum)");
  expect_every_rank_fails(errors_on_3_ranks(ranks, [&](const Communicator& comm) {
                            Tensor t = tensor_of(comm, 8, comm.rank() == 1 ? DType::bf16 : DType::f32);
                            comm.all_reduce(t, Reduce::sum);
                          }),
                          "rank 1 called all_reduce of bf16 x 8");
  expect_every_rank_fails(errors_on_3_ranks(ranks, [&](const Communicator& comm) {
                            Tensor t = tensor_of(comm, 8);
                            comm.all_reduce(t, comm.rank() == 0 ? Reduce::max : Reduce::sum);
                          }),
                          "the ranks disagree");
  expect_every_rank_fails(errors_on_3_ranks(ranks, [&](const Communicator& comm) {
                            Tensor t = tensor_of(comm, 8);
                            if (comm.rank() == 0) {
                              comm.barrier();
                            } else {
                              comm.broadcast(t, 0);
                            }
                          }),
                          "rank 0 called barrier");
  expect_every_rank_fails(errors_on_3_ranks(ranks, [&](const Communicator& comm) {
                            Tensor t = tensor_of(comm, 8);
                            comm.broadcast(t, comm.rank());
                          }),
                          "from root 2");
  // A bad argument on one rank fails every rank, naming that rank.
  expect_every_rank_fails(errors_on_3_ranks(ranks, [&](const Communicator& comm) {
                            Tensor t = tensor_of(comm, 8);
                            comm.broadcast(t, comm.rank() == 1 ? 5 : 0);
                          }),
                          "rank 1: argument root: expected a rank in [0, 3), got 5");
  expect_every_rank_fails(errors_on_3_ranks(ranks, [&](const Communicator& comm) {
                            Tensor t = full({4, 6}, 1.0f, DType::f32, comm.device());
                            Tensor view = comm.rank() == 0 ? t.transpose(0, 1) : t.reshape({6, 4});
                            comm.all_reduce(view, Reduce::sum);
                          }),
                          "rank 0: argument in: expected a contiguous tensor");
  expect_every_rank_fails(errors_on_3_ranks(ranks, [&](const Communicator& comm) {
                            Tensor t = tensor_of(comm, 8);
                            Tensor out = tensor_of(comm, 8, DType::bf16);
                            comm.all_reduce(t, comm.rank() == 2 ? out : t, Reduce::sum);
                          }),
                          "rank 2: argument out: expected dtype f32 like in");
  expect_every_rank_fails(errors_on_3_ranks(ranks, [&](const Communicator& comm) {
                            Tensor t = full({8}, 1, DType::i32, comm.device());
                            comm.all_reduce(t, Reduce::sum);
                          }),
                          "expected f32, f16 or bf16");
  expect_every_rank_fails(errors_on_3_ranks(ranks, [&](const Communicator& comm) {
                            Tensor in = tensor_of(comm, 8);
                            Tensor out = tensor_of(comm, 3);
                            comm.reduce_scatter(in, out, Reduce::sum);
                          }),
                          "argument in: expected a multiple of 3 ranks elements");
  expect_every_rank_fails(errors_on_3_ranks(ranks, [&](const Communicator& comm) {
                            Tensor in = tensor_of(comm, 8);
                            Tensor out = tensor_of(comm, 8);
                            comm.all_gather(in, out);
                          }),
                          "argument out: expected 24 elements");
  expect_every_rank_fails(errors_on_3_ranks(ranks, [&](const Communicator& comm) {
                            Tensor both = tensor_of(comm, 16);
                            comm.all_reduce(both.slice(0, 0, 8), both.slice(0, 4, 12), Reduce::sum);
                          }),
                          "argument out: expected storage apart from in");
  expect_every_rank_fails(errors_on_3_ranks(ranks, [&](const Communicator& comm) {
                            // rank 1 drives cpu:1 but passes a tensor on cpu:0
                            Tensor t = Tensor::empty({8}, DType::f32, comm.rank() == 1 ? Device::get("cpu:0") : comm.device());
                            comm.all_reduce(t, Reduce::sum);
                          }),
                          "rank 1: argument in: expected a tensor on this rank's device");
  // After all of that the group still works.
  auto failures = exact_all_reduce(ranks, DType::f32, 100, Reduce::sum, true, 1);
  for (const auto& failure : failures) EXPECT_EQ(failure, "");
}

TEST(LocalCollectivesErrors, RanksSharingOneTensorAreRefused) {
  auto ranks = Communicator::local({Device::get("cpu:0"), Device::get("cpu:0")});
  Tensor shared = full({8}, 1.0f, DType::f32, Device::get("cpu:0"));
  std::vector<std::string> messages(2);
  run_ranks(ranks, [&](const Communicator& comm) {
    try {
      comm.all_reduce(shared, Reduce::sum);
    } catch (const Error& error) {
      messages[static_cast<std::size_t>(comm.rank())] = error.what();
    }
  });
  expect_every_rank_fails(messages, "ranks 0 and 1 pass the same storage");
}

TEST(LocalCollectivesErrors, ThrowingRankFailsTheOthersQuickly) {
  auto ranks = Communicator::local(cpu_ranks(4));
  std::atomic<int> failed_fast{0};
  std::atomic<int> aborted_messages{0};
  const auto start = std::chrono::steady_clock::now();
  try {
    run_ranks(ranks, [&](const Communicator& comm) {
      Tensor t = full({1000}, 1.0f, DType::f32, comm.device());
      comm.all_reduce(t, Reduce::sum);  // one good round first
      if (comm.rank() == 2) throw std::runtime_error("rank two gave up");
      try {
        comm.all_reduce(t, Reduce::sum);
      } catch (const Error& error) {
        if (std::chrono::steady_clock::now() - start < std::chrono::seconds(2)) ++failed_fast;
        if (std::string(error.what()).find("rank 2 failed: rank two gave up") != std::string::npos) ++aborted_messages;
        throw;
      }
    });
    ADD_FAILURE() << "run_ranks did not rethrow";
  } catch (const std::runtime_error& error) {
    EXPECT_STREQ(error.what(), "rank two gave up");  // the root cause, not its echoes
  }
  EXPECT_EQ(failed_fast.load(), 3);
  EXPECT_EQ(aborted_messages.load(), 3);
  // The group stays broken: a later call fails at once instead of waiting for rank 2.
  EXPECT_NE(error_text([&] { ranks[0].barrier(); }, ErrorKind::backend_error).find("aborted"), std::string::npos);
}

// A rank that never arrives (a thread of the program's own that returned early): the
// others give up after $PORTA_COLLECTIVE_TIMEOUT_S and name it.
TEST(LocalCollectivesErrors, MissingRankTimesOut) {
  const char* timeout = std::getenv("PORTA_COLLECTIVE_TIMEOUT_S");
  if (timeout == nullptr || std::atof(timeout) > 10) GTEST_SKIP() << "set PORTA_COLLECTIVE_TIMEOUT_S <= 10 to run";
  auto ranks = Communicator::local(cpu_ranks(3));
  std::vector<std::string> messages(3);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {  // rank 2 never calls
    threads.emplace_back([&, r] {
      messages[static_cast<std::size_t>(r)] = error_text([&] { ranks[static_cast<std::size_t>(r)].barrier(); }, ErrorKind::backend_error);
    });
  }
  for (auto& thread : threads) thread.join();
  for (int r = 0; r < 2; ++r) {
    EXPECT_NE(messages[static_cast<std::size_t>(r)].find("rank(s) 2"), std::string::npos) << messages[static_cast<std::size_t>(r)];
  }
}

// The MPI transport's choice: latency-bound sizes take doubling, bandwidth-bound ones the
// ring, and the crossover moves up with the rank count.
TEST(AllReduceChoice, FollowsTheCostModel) {
  EXPECT_EQ(Communicator::mpi_all_reduce_algorithm(2, 4 << 10), "doubling");
  EXPECT_EQ(Communicator::mpi_all_reduce_algorithm(2, 1 << 20), "ring");
  EXPECT_EQ(Communicator::mpi_all_reduce_algorithm(3, 256), "doubling");
  EXPECT_EQ(Communicator::mpi_all_reduce_algorithm(4, 4 << 10), "doubling");
  EXPECT_EQ(Communicator::mpi_all_reduce_algorithm(7, 256 << 10), "ring");
  EXPECT_EQ(Communicator::mpi_all_reduce_algorithm(64, 64 << 10), "doubling");
  EXPECT_EQ(Communicator::mpi_all_reduce_algorithm(64, 16 << 20), "ring");
}

TEST(LocalCollectivesErrors, BadArguments) {
  EXPECT_NE(error_text([] { Communicator::local({}); }).find("expected at least one device"), std::string::npos);
  EXPECT_NE(error_text([] { Communicator::local({Device::get("cpu:0"), Device(nullptr)}); }).find("device 1 is an empty handle"),
            std::string::npos);
  if (!Communicator::mpi_built()) {
    EXPECT_NE(error_text([] { Communicator::mpi(Device::get("cpu:0")); }, ErrorKind::unsupported).find("built without MPI"),
              std::string::npos);
  }
  setenv("PORTA_ALLREDUCE_ALGO", "fastest", 1);
  auto ranks = Communicator::local(cpu_ranks(1));
  EXPECT_NE(error_text([&] { ranks[0].all_reduce_algorithm(4); }).find("expected auto, ring, doubling"), std::string::npos);
  unsetenv("PORTA_ALLREDUCE_ALGO");
}

}  // namespace
}  // namespace porta::test
