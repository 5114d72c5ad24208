// libFuzzer's entry point for programs that have their own main (compiler-rt
// lib/fuzzer/FuzzerInterface.h); linked in by -sanitize=fuzzer.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));
