// A coordinator that runs out of file descriptors: a real process under
// prlimit, real idle TCP connections from a client with no token. gRPC 1.51
// then stops accepting for good while the process lives on, so its service
// manager never restarts it; the coordinator must notice and exit 3.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "core/exit_codes.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;
using testing::PerfgateBinary;
using testing::Subprocess;

// Connects to 127.0.0.1:port; the kernel completes the connection into the
// listen backlog whether or not the server accepts it. -1 on failure.
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
  if (fd >= 0) close(fd);
  return -1;
}

TEST(CoordinatorDescriptorLimitTest, RunningOutOfDescriptorsStopsItWithExitThreeForARestart) {
  testing::TempDir dir;
  Subprocess coordinator({"/usr/bin/prlimit", "--nofile=96:96", PerfgateBinary(), "coordinator", "--listen",
                          "127.0.0.1:0", "--db", dir.File("perfgate.db")});
  const std::string address = testing::CoordinatorAddress(coordinator);
  ASSERT_FALSE(address.empty()) << coordinator.output();
  const int port = std::stoi(address.substr(address.rfind(':') + 1));
  std::vector<int> idle;
  for (int i = 0; i < 200; ++i) {
    if (int fd = Connect(port); fd >= 0) idle.push_back(fd);
  }
  EXPECT_GT(idle.size(), 96u) << "fewer connections than the limit: nothing to exhaust";
  const int code = coordinator.Wait(120'000);
  for (int fd : idle) close(fd);
  EXPECT_EQ(code, kExitInfra) << coordinator.output();
  EXPECT_THAT(coordinator.output(),
              HasSubstr("stopping: gRPC stopped accepting connections (Failed accept4: Too many open files)"));
}

}  // namespace
}  // namespace perfgate
