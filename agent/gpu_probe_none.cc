#include "agent/gpu_probe.h"

namespace perfgate {

GpuProbe ProbeGpus() { return {{}, "perfgate was built without the CUDA toolkit; GPU discovery is off"}; }

}  // namespace perfgate
