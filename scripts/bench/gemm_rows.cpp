// Time of LibTorch's bf16 matrix product (oneDNN underneath: AMX or AVX512-BF16 brgemm) against the row count
// M of A [M, K], for the training step's shapes: which batch sizes and loss chunks the GEMMs favour.
// Built and run by gemm_rows.sh. Prints one line per M: milliseconds (best of N) and GFLOP/s.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: gemm_rows K N n|t M... (t: B = W^T for W [N, K])\n");
    return 2;
  }
  torch::set_num_threads(2);
  const int64_t K = std::atoll(argv[1]), N = std::atoll(argv[2]);
  const bool transposed = std::string(argv[3]) == "t";
  const auto w =
      torch::randn(transposed ? std::vector<int64_t>{N, K} : std::vector<int64_t>{K, N}).to(torch::kBFloat16);
  const auto b = transposed ? w.t() : w;  // [K, N]
  for (int i = 4; i < argc; ++i) {
    const int64_t M = std::atoll(argv[i]);
    const auto a = torch::randn({M, K}).to(torch::kBFloat16);
    double best = 1e9;
    for (int r = 0; r < 30; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto c = torch::mm(a, b);  // [M, N]
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::printf("K=%ld N=%ld%s M=%4ld %8.3f ms %6.0f GFLOP/s\n", static_cast<long>(K), static_cast<long>(N),
                transposed ? " (W^T)" : "", static_cast<long>(M), best * 1e3, 2.0 * M * K * N / best / 1e9);
  }
  return 0;
}
