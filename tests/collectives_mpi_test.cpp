// collectives_mpi_test.cpp — the MPI transport, one rank per process: run by ctest under
// `mpirun -np 2|3|4 --oversubscribe`. Each rank uses $PORTA_MPI_TEST_DEVICE (default
// cpu:0); opencl and vulkan devices exercise the host staging.
#include <cstdlib>

#include "collectives_cases.hpp"

namespace porta::test {
namespace {

Communicator& comm() {
  static Communicator instance = [] {
    const char* name = std::getenv("PORTA_MPI_TEST_DEVICE");
    return Communicator::mpi(Device::get(name != nullptr ? name : "cpu:0"));
  }();
  return instance;
}

constexpr std::int64_t mebi_plus_3 = (1 << 20) + 3;
const std::vector<Reduce> reductions = {Reduce::sum, Reduce::avg, Reduce::max, Reduce::min};

class ForcedAlgorithm {
 public:
  explicit ForcedAlgorithm(const std::string& name) {
    if (!name.empty()) setenv("PORTA_ALLREDUCE_ALGO", name.c_str(), 1);
  }
  ~ForcedAlgorithm() { unsetenv("PORTA_ALLREDUCE_ALGO"); }
};

// The same 64-bit value on every rank: rank 0's, broadcast as raw 16-bit words.
std::uint64_t shared_seed() {
  std::uint64_t seed = fresh_seed();
  Tensor words = Tensor::from_host(&seed, sizeof(seed), {4}, DType::bf16, comm().device());
  comm().broadcast(words, 0);
  words.copy_to_host(&seed, sizeof(seed));
  return seed;
}

TEST(MpiCollectives, AllReduceIntegersBitExact) {
  const int n = comm().size();
  int salt = 0;
  for (const std::string algorithm : {"", "ring", "doubling", "mpi"}) {
    ForcedAlgorithm forced(algorithm);
    for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
      for (std::int64_t size : {std::int64_t(0), std::int64_t(1), std::int64_t(7), std::int64_t(1023), mebi_plus_3}) {
        for (Reduce op : reductions) {
          if (size == mebi_plus_3 && op != Reduce::sum && (dtype != DType::f32 || op != Reduce::max)) continue;
          const bool in_place = (++salt % 2) == 0;
          auto input = integer_input(dtype, size, comm().rank(), salt);
          Tensor in = Tensor::from_host(input.data(), input.size(), {size}, dtype, comm().device());
          Tensor out = in_place ? in : Tensor::empty({size}, dtype, comm().device());
          comm().all_reduce(in, out, op);
          auto expected = integer_expected_bytes(dtype, op, n, 0, static_cast<std::size_t>(size), salt);
          EXPECT_EQ(difference_text(read_bytes(out), expected, dtype), "")
              << "algorithm '" << algorithm << "', rank " << comm().rank() << " of " << n << ", " << to_string(dtype)
              << " x " << size << ", " << to_string(op) << (in_place ? ", in place" : "");
        }
      }
    }
  }
}

TEST(MpiCollectives, RandomDataWithinToleranceAndBitIdenticalOnEveryRank) {
  const int n = comm().size();
  const std::uint64_t seed = shared_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (const std::string algorithm : {"ring", "doubling"}) {
    ForcedAlgorithm forced(algorithm);
    for (DType dtype : {DType::f32, DType::bf16}) {
      const std::int64_t size = mebi_plus_3;  // 1 MiB ring segments: two or more per part at 2-4 ranks
      std::vector<std::vector<unsigned char>> inputs;
      for (int r = 0; r < n; ++r) inputs.push_back(random_bytes(dtype, size, seed + static_cast<std::uint64_t>(r)));
      const auto& mine = inputs[static_cast<std::size_t>(comm().rank())];
      std::vector<unsigned char> runs[2];
      for (auto& run : runs) {
        Tensor tensor = Tensor::from_host(mine.data(), mine.size(), {size}, dtype, comm().device());
        comm().all_reduce(tensor, Reduce::sum);
        run = read_bytes(tensor);
      }
      EXPECT_TRUE(runs[0] == runs[1]) << algorithm << ": a rerun gave other bits";
      EXPECT_EQ(check_random_sum(inputs, runs[0], dtype, false), "") << algorithm;
      // Every rank's result, gathered: all must equal this rank's bit for bit.
      Tensor result = Tensor::from_host(runs[0].data(), runs[0].size(), {size}, dtype, comm().device());
      Tensor all = Tensor::empty({n, size}, dtype, comm().device());
      comm().all_gather(result, all);
      auto gathered = read_bytes(all);
      for (int r = 0; r < n; ++r) {
        std::vector<unsigned char> theirs(gathered.begin() + static_cast<std::ptrdiff_t>(runs[0].size() * static_cast<std::size_t>(r)),
                                          gathered.begin() + static_cast<std::ptrdiff_t>(runs[0].size() * static_cast<std::size_t>(r + 1)));
        EXPECT_TRUE(theirs == runs[0]) << algorithm << ", " << to_string(dtype) << ": rank " << r << " differs from rank "
                                       << comm().rank();
      }
    }
  }
}

TEST(MpiCollectives, ReduceScatterAllGatherBroadcastBitExact) {
  const int n = comm().size();
  const int rank = comm().rank();
  int salt = 40;
  for (DType dtype : {DType::f32, DType::bf16}) {
    for (std::int64_t part : {std::int64_t(0), std::int64_t(1), std::int64_t(7), std::int64_t(1023), std::int64_t(300001)}) {
      ++salt;
      for (Reduce op : reductions) {
        auto input = integer_input(dtype, part * n, rank, salt);
        Tensor in = Tensor::from_host(input.data(), input.size(), {part * n}, dtype, comm().device());
        Tensor out = Tensor::empty({part}, dtype, comm().device());
        comm().reduce_scatter(in, out, op);
        auto expected = integer_expected_bytes(dtype, op, n, static_cast<std::size_t>(part * rank), static_cast<std::size_t>(part), salt);
        EXPECT_EQ(difference_text(read_bytes(out), expected, dtype), "")
            << "reduce_scatter, rank " << rank << ", " << to_string(dtype) << " x " << part << ", " << to_string(op);
      }
      auto mine = integer_input(dtype, part, rank, salt);
      Tensor in = Tensor::from_host(mine.data(), mine.size(), {part}, dtype, comm().device());
      Tensor gathered = Tensor::empty({n * part}, dtype, comm().device());
      comm().all_gather(in, gathered);
      std::vector<unsigned char> expected;
      for (int q = 0; q < n; ++q) {
        auto theirs = integer_input(dtype, part, q, salt);
        expected.insert(expected.end(), theirs.begin(), theirs.end());
      }
      EXPECT_EQ(difference_text(read_bytes(gathered), expected, dtype), "") << "all_gather, " << to_string(dtype) << " x " << part;
      comm().broadcast(in, n - 1);
      EXPECT_EQ(difference_text(read_bytes(in), integer_input(dtype, part, n - 1, salt), dtype), "")
          << "broadcast, " << to_string(dtype) << " x " << part;
    }
  }
  comm().barrier();
}

TEST(MpiCollectives, DisagreementsThrowOnEveryRank) {
  const int n = comm().size();
  const int last = n - 1;
  Tensor t = full({comm().rank() == last ? 9 : 8}, 1.0, DType::f32, comm().device());
  std::string message = error_text([&] { comm().all_reduce(t, Reduce::sum); });
  EXPECT_NE(message.find("the ranks disagree"), std::string::npos) << message;
  EXPECT_NE(message.find("rank " + std::to_string(last) + " called all_reduce of f32 x 9 (sum)"), std::string::npos) << message;

  Tensor u = full({8}, 1.0, comm().rank() == 0 ? DType::bf16 : DType::f32, comm().device());
  message = error_text([&] { comm().all_reduce(u, Reduce::avg); });
  EXPECT_NE(message.find("rank 0 called all_reduce of bf16 x 8 (avg)"), std::string::npos) << message;

  // One rank's bad argument fails every rank.
  Tensor v = full({8}, 1.0, DType::f32, comm().device());
  message = error_text([&] { comm().broadcast(v, comm().rank() == 0 ? n + 3 : 0); });
  if (comm().rank() == 0) {
    EXPECT_NE(message.find("argument root: expected a rank in [0, "), std::string::npos) << message;
  } else {
    EXPECT_NE(message.find("another rank's arguments are invalid"), std::string::npos) << message;
  }
  // Ranks whose $PORTA_ALLREDUCE_ALGO differs pick different paths for the same call:
  // caught as well (a small doubling all-reduce travels with the header exchange).
  if (n > 1) {
    ForcedAlgorithm forced(comm().rank() == 0 ? "ring" : "doubling");
    Tensor small = full({64}, 1.0, DType::f32, comm().device());
    message = error_text([&] { comm().all_reduce(small, Reduce::sum); });
    EXPECT_NE(message.find("chose different all-reduce algorithms"), std::string::npos) << message;
  }
  // The communicator still works.
  Tensor w = full({5}, 2.0, DType::f32, comm().device());
  comm().all_reduce(w, Reduce::sum);
  for (float value : w.to_host<float>()) EXPECT_EQ(value, 2.0f * static_cast<float>(n));
}

}  // namespace
}  // namespace porta::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  porta::test::comm();  // MPI starts before the first test, on every rank
  return RUN_ALL_TESTS();
}
