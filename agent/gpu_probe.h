// GPU discovery through the CUDA runtime. Built with the toolkit where it is
// installed (gpu_probe_cuda.cc); elsewhere gpu_probe_none.cc says so.
#pragma once

#include <string>
#include <vector>

#include "perfgate/v1/common.pb.h"

namespace perfgate {

struct GpuProbe {
  std::vector<v1::GpuInfo> gpus;
  // Empty when GPUs were found; otherwise why there are none, plainly
  // ("CUDA driver missing or too old: ...").
  std::string note;
};

GpuProbe ProbeGpus();

}  // namespace perfgate
