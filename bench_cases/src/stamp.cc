// A trivial case that says when it ran, from inside its own process: two
// CLOCK_MONOTONIC readings in nanoseconds, at its first and its last moment,
// on one line of stdout ("START END"). The monotonic clock is the machine's,
// the same in every process, so bench/dispatch lays these beside its own
// timestamps (history calls) and sees when any agent was running a case.
#include <stdio.h>
#include <time.h>

static long long MonotonicNs() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main() {
  const long long start = MonotonicNs();
  printf("%lld %lld\n", start, MonotonicNs());
  return 0;
}
