// Whether a machine can run a case: one rule, used by the coordinator to
// match leases and by `perfgate run` to skip what a lab machine cannot run.
#pragma once

#include <string>
#include <vector>

#include "perfgate/v1/common.pb.h"

namespace perfgate {

// Empty when `host` with `labels` satisfies `req`; otherwise the first unmet
// requirement in words ("needs a GPU; this host has none (no driver)").
std::string UnmetRequirement(const v1::Requirements& req, const v1::HostFingerprint& host,
                             const std::vector<std::string>& labels);

}  // namespace perfgate
