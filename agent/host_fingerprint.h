// What an agent tells the coordinator about its machine, so that numbers
// from different hardware are never compared.
#pragma once

#include "perfgate/v1/common.pb.h"

namespace perfgate {

// Reads /proc, /sys and the CUDA runtime. Fields that cannot be read stay
// empty; it never fails.
v1::HostFingerprint ProbeHost();

// One line: "Intel Xeon ... x2, 23.5 GiB, linux 6.1, governor performance, 0 GPUs (why)".
std::string DescribeHost(const v1::HostFingerprint& host);

}  // namespace perfgate
