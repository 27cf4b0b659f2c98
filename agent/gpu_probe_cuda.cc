#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"
#include "agent/gpu_probe.h"

namespace perfgate {
namespace {

std::string CudaVersion(int v) { return absl::StrCat(v / 1000, ".", (v % 1000) / 10); }

}  // namespace

GpuProbe ProbeGpus() {
  GpuProbe probe;
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    probe.note =
        absl::StrCat("no usable GPU: ", cudaGetErrorName(err), " (", cudaGetErrorString(err), "); CUDA runtime ",
                     CudaVersion(runtime), driver ? absl::StrCat(", driver ", CudaVersion(driver)) : ", no driver");
    return probe;
  }
  if (count == 0) probe.note = "CUDA driver present but no GPU devices";
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    v1::GpuInfo gpu;
    gpu.set_name(prop.name);
    gpu.set_memory_bytes(prop.totalGlobalMem);
    gpu.set_compute_capability(static_cast<uint32_t>(prop.major * 10 + prop.minor));
    gpu.set_driver_version(CudaVersion(driver));
    gpu.set_runtime_version(CudaVersion(runtime));
    probe.gpus.push_back(std::move(gpu));
  }
  return probe;
}

}  // namespace perfgate
