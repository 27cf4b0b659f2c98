// Device memory bandwidth: a copy kernel over a large buffer (read once,
// write once), timed with CUDA events: the GPU-bound counterpart of
// cuda_add_one's launch-bound x + 1. Reports, as PyTorch result lines in the
// file named on the command line, the bytes moved per second and the GPU
// time of one pass. PERFGATE_SLOWDOWN_PCT=N runs N% more passes, still
// counted as the nominal PASSES.
//
//   cuda_bandwidth RESULT_FILE [MIB] [PASSES]
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

__global__ void Copy(const float4* __restrict__ in, float4* __restrict__ out, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    out[i] = in[i];
  }
}

static int Check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return 0;
  std::fprintf(stderr, "cuda_bandwidth: %s: %s (%s)\n", what, cudaGetErrorName(err), cudaGetErrorString(err));
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: cuda_bandwidth RESULT_FILE [MIB] [PASSES]\n");
    return 2;
  }
  const size_t mib = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1024;
  const int passes = argc > 3 ? std::atoi(argv[3]) : 50;
  if (mib == 0 || passes <= 0) {
    std::fprintf(stderr, "cuda_bandwidth: MIB and PASSES must be positive\n");
    return 2;
  }
  const char* slowdown = std::getenv("PERFGATE_SLOWDOWN_PCT");
  const int slowed = passes + passes * (slowdown ? std::atoi(slowdown) : 0) / 100;
  const size_t bytes = mib << 20, n = bytes / sizeof(float4);
  float4 *in = nullptr, *out = nullptr;
  if (Check(cudaMalloc(&in, bytes), "cudaMalloc") || Check(cudaMalloc(&out, bytes), "cudaMalloc")) return 1;
  if (Check(cudaMemset(in, 1, bytes), "cudaMemset")) return 1;
  int device = 0, sms = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int block = 256, grid = sms * 8;
  for (int i = 0; i < 3; ++i) Copy<<<grid, block>>>(in, out, n);  // warm-up: module load, clocks
  if (Check(cudaDeviceSynchronize(), "warm-up")) return 1;

  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start);
  for (int i = 0; i < slowed; ++i) Copy<<<grid, block>>>(in, out, n);
  cudaEventRecord(stop);
  if (Check(cudaEventSynchronize(stop), "kernels")) return 1;
  float gpu_ms = 0;
  cudaEventElapsedTime(&gpu_ms, start, stop);
  unsigned char check[2] = {};
  cudaMemcpy(check, reinterpret_cast<unsigned char*>(out) + bytes - 2, 2, cudaMemcpyDeviceToHost);
  if (check[0] != 1 || check[1] != 1) {
    std::fprintf(stderr, "cuda_bandwidth: the copy is wrong (%d, %d at the end, expected 1, 1)\n", check[0], check[1]);
    return 1;
  }
  std::FILE* result = std::fopen(argv[1], "a");
  if (!result) {
    std::perror(argv[1]);
    return 1;
  }
  const double seconds = gpu_ms / 1e3;
  // A copy reads and writes every byte once per pass.
  std::fprintf(result, "cuda_bandwidth,bytes_per_second,%.9g\n", 2.0 * bytes * passes / seconds);
  std::fprintf(result, "cuda_bandwidth,gpu_time_per_pass_s,%.9g\n", seconds / passes);
  std::fclose(result);
  cudaFree(in);
  cudaFree(out);
  return 0;
}
