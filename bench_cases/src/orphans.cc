// Leaves processes behind, for tests of the agent's process hygiene: a child
// that has exited but was never reaped (a zombie once this exits), and one
// that left the process group with setsid and sleeps forever. Writes both
// pids to the file it is given, then exits.
//
//   orphans PIDFILE
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: orphans PIDFILE\n");
    return 2;
  }
  const pid_t zombie = fork();
  if (zombie == 0) _exit(0);
  siginfo_t info;
  waitid(P_PID, zombie, &info, WEXITED | WNOWAIT);  // it has exited; leave it unreaped

  int ready[2];
  if (pipe(ready) != 0) return 1;
  const pid_t sleeper = fork();
  if (sleeper == 0) {
    setsid();
    close(ready[0]);
    close(ready[1]);  // tells the parent the setsid is done
    for (;;) pause();
  }
  close(ready[1]);
  char byte;
  while (read(ready[0], &byte, 1) > 0) {
  }
  std::FILE* out = std::fopen(argv[1], "w");
  if (!out) return 1;
  std::fprintf(out, "%d %d\n", zombie, sleeper);
  return std::fclose(out) == 0 ? 0 : 1;
}
