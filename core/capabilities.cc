#include "core/capabilities.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/units.h"

namespace perfgate {

std::string UnmetRequirement(const v1::Requirements& req, const v1::HostFingerprint& host,
                             const std::vector<std::string>& labels) {
  for (const auto& label : req.labels()) {
    if (std::find(labels.begin(), labels.end(), label) == labels.end()) {
      return absl::StrCat("needs label '", label, "'");
    }
  }
  const bool wants_gpu = req.device() == v1::Requirements::DEVICE_GPU || req.min_gpu_memory_bytes() > 0 ||
                         req.min_compute_capability() > 0;
  if (!wants_gpu) return "";
  if (host.gpus_size() == 0) {
    return absl::StrCat("needs a GPU; host has none", host.gpu_note().empty() ? "" : " (" + host.gpu_note() + ")");
  }
  for (const auto& gpu : host.gpus()) {
    if (gpu.memory_bytes() >= req.min_gpu_memory_bytes() && gpu.compute_capability() >= req.min_compute_capability()) {
      return "";
    }
  }
  return absl::StrCat("needs a GPU with at least ", FormatBytes(static_cast<double>(req.min_gpu_memory_bytes())),
                      " and compute capability ", req.min_compute_capability() / 10, ".",
                      req.min_compute_capability() % 10);
}

}  // namespace perfgate
