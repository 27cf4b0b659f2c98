// `x + 1` on a small device tensor, launched many times: the GPU side of
// PyTorch's eager-vs-compiled add microbenchmark. Reports, as PyTorch result
// lines in the file named on the command line, the GPU time per kernel
// (CUDA events) and the host time per launch. PERFGATE_SLOWDOWN_PCT=N
// launches N% more kernels, still divided by the nominal LAUNCHES.
//
//   cuda_add_one RESULT_FILE [ELEMENTS] [LAUNCHES]
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

__global__ void AddOne(float* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += 1.0f;
}

static int Check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return 0;
  std::fprintf(stderr, "cuda_add_one: %s: %s (%s)\n", what, cudaGetErrorName(err), cudaGetErrorString(err));
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: cuda_add_one RESULT_FILE [ELEMENTS] [LAUNCHES]\n");
    return 2;
  }
  const int n = argc > 2 ? std::atoi(argv[2]) : 2;
  const int launches = argc > 3 ? std::atoi(argv[3]) : 10000;
  const char* slowdown = std::getenv("PERFGATE_SLOWDOWN_PCT");
  const int slowed = launches + launches * (slowdown ? std::atoi(slowdown) : 0) / 100;
  float* x = nullptr;
  if (Check(cudaMalloc(&x, sizeof(float) * n), "cudaMalloc")) return 1;
  if (Check(cudaMemset(x, 0, sizeof(float) * n), "cudaMemset")) return 1;
  const int block = 256, grid = (n + block - 1) / block;
  for (int i = 0; i < 100; ++i) AddOne<<<grid, block>>>(x, n);  // warm-up: module load, clocks
  if (Check(cudaDeviceSynchronize(), "warm-up")) return 1;

  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  const auto host_start = std::chrono::steady_clock::now();
  cudaEventRecord(start);
  for (int i = 0; i < slowed; ++i) AddOne<<<grid, block>>>(x, n);
  cudaEventRecord(stop);
  const auto host_end = std::chrono::steady_clock::now();
  if (Check(cudaEventSynchronize(stop), "kernels")) return 1;
  float gpu_ms = 0;
  cudaEventElapsedTime(&gpu_ms, start, stop);
  float check = 0;
  cudaMemcpy(&check, x, sizeof check, cudaMemcpyDeviceToHost);
  if (check != 100.0f + slowed) {
    std::fprintf(stderr, "cuda_add_one: wrong result %f, expected %d\n", check, 100 + slowed);
    return 1;
  }
  std::FILE* out = std::fopen(argv[1], "a");
  if (!out) {
    std::perror(argv[1]);
    return 1;
  }
  const double host_s = std::chrono::duration<double>(host_end - host_start).count();
  std::fprintf(out, "cuda_add_one,gpu_time_per_kernel_s,%.9g\n", gpu_ms / 1e3 / launches);
  std::fprintf(out, "cuda_add_one,launch_time_s,%.9g\n", host_s / launches);
  std::fclose(out);
  cudaFree(x);
  return 0;
}
