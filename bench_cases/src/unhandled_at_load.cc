/* A library whose start-up, under valgrind only, runs an AVX-512
 * instruction valgrind 3.19 cannot decode: what libhwy's RDTSCP does on some
 * hosts. Lets the tests probe a host where valgrind cannot run a library. */
#include <valgrind/valgrind.h>

__attribute__((constructor)) static void run_unhandled_instruction(void) {
  if (RUNNING_ON_VALGRIND) asm volatile(".byte 0x62, 0xf1, 0x7d, 0x48, 0xef, 0xc0"); /* vpxord zmm0, zmm0, zmm0 */
}
