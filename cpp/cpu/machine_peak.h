// The machine's measured peaks: the FLOP rate of independent FMA chains and
// the bandwidth of a streaming copy, both on every thread of the pool. They
// are the roofs that gradsmith.machine.peak() reports and that benchmarks
// and the profiler divide by.
//
// The per-ISA chain loops live in peak_scalar.cpp, peak_avx2.cpp and
// peak_avx512.cpp, each compiled for its instruction set and exporting only
// its one function, declared here with nothing but <stdint.h> so that no
// library code is instantiated in those files.
#pragma once

#include <stdint.h>

namespace gradsmith {
namespace cpu {

// Run `iters` iterations of independent multiply-add chains on the calling
// thread; return the FLOPs done (a multiply-add is 2 per lane). *sink gets a
// value that depends on every operation, so none can be optimized away.
double peak_chains_scalar(int64_t iters, float* sink);
double peak_chains_avx2(int64_t iters, float* sink);
double peak_chains_avx512(int64_t iters, float* sink);
// Int8 chains of vpdpbusd: returns the integer operations done (2 per byte multiply-add).
double peak_chains_vnni(int64_t iters, float* sink);

struct PeakRun {
  double work;     // FLOPs or bytes counted
  double seconds;  // wall time of the parallel region
};

// The chain loop of the path in use (kernels().name), `iters` iterations on
// every pool thread at once.
PeakRun fma_peak_run(int64_t iters);

// The int8 roof of the int8 path in use (qkernels().name): vpdpbusd chains on every pool thread for
// avx512_vnni; work 0 for the other paths, which have no int8 multiply-add chain worth a roof.
PeakRun int8_peak_run(int64_t iters);

// Default size of each copy buffer: at least 256 MiB and at least the
// last-level cache, so that source + destination are at least twice its size.
int64_t copy_buffer_bytes();

// Copy a `bytes` buffer (rounded up to whole chunks) into another `repeats`
// times on every pool thread; seconds[r] gets the time of copy r. Returns the
// bytes each copy counts: read + write, 2 x the buffer.
double copy_bandwidth_runs(int64_t bytes, int repeats, double* seconds);

}  // namespace cpu
}  // namespace gradsmith
