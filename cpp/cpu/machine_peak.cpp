// Measured roofs: FMA-chain FLOP rate and streaming-copy bandwidth on every
// pool thread. See machine_peak.h.
#include "cpu/machine_peak.h"

#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <vector>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "cpu/dispatch.h"
#include "cpu/qgemm.h"
#include "cpu/thread_pool.h"

namespace gradsmith {
namespace cpu {
namespace {

using ChainFn = double (*)(int64_t, float*);

// The chain loop of the path in use: its roof is what that path's kernels can reach.
ChainFn chains_for(const char* isa) {
  if (std::strcmp(isa, "avx512") == 0) return &peak_chains_avx512;
  if (std::strcmp(isa, "avx2") == 0) return &peak_chains_avx2;
  return &peak_chains_scalar;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One result per task, each on its own cache line so threads do not share lines.
struct alignas(64) TaskResult {
  double work = 0.0;
  float sink = 0.f;
};

constexpr int64_t kMiB = int64_t(1) << 20;
// Copy tasks: fixed 4 MiB chunks, many per thread, handed out dynamically.
constexpr int64_t kChunkBytes = 4 * kMiB;
constexpr int64_t kChunkFloats = kChunkBytes / (int64_t)sizeof(float);

// Copy one chunk (64-byte aligned, a multiple of 16 floats). With SSE the
// stores are non-temporal: they write whole cache lines to memory without
// first reading them (no write-allocate), so the memory traffic is exactly
// read + write bytes, the figure counted. The sfence makes the chunk's stores
// visible before the task is reported done. Elsewhere memcpy runs, and the
// write-allocate read it may cause is not counted (the figure is then low).
void copy_chunk(const float* src, float* dst, int64_t n) {
#if defined(__SSE2__)
  for (int64_t i = 0; i < n; i += 16) {
    const __m128 a = _mm_load_ps(src + i), b = _mm_load_ps(src + i + 4);
    const __m128 c = _mm_load_ps(src + i + 8), d = _mm_load_ps(src + i + 12);
    _mm_stream_ps(dst + i, a);
    _mm_stream_ps(dst + i + 4, b);
    _mm_stream_ps(dst + i + 8, c);
    _mm_stream_ps(dst + i + 12, d);
  }
  _mm_sfence();
#else
  std::memcpy(dst, src, (size_t)n * sizeof(float));
#endif
}

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<float[], FreeDeleter>;

Buffer alloc_buffer(int64_t bytes) {
  // 2 MiB-aligned and, where Linux allows, backed by huge pages: 512x fewer
  // page faults when the buffer is first touched, which otherwise dominate.
  void* p = std::aligned_alloc(2 * kMiB, (size_t)bytes);
  if (p == nullptr) throw std::bad_alloc();
#if defined(MADV_HUGEPAGE)
  madvise(p, (size_t)bytes, MADV_HUGEPAGE);  // a hint: failure changes nothing but speed
#endif
  return Buffer(static_cast<float*>(p));
}

}  // namespace

PeakRun fma_peak_run(int64_t iters) {
  const ChainFn chains = chains_for(kernels().name);
  const int n = num_threads();
  std::vector<TaskResult> results((size_t)n);
  // One task per thread: each runs the whole loop, so the region's wall time
  // is one loop's time when every thread has a core.
  const double t0 = now_s();
  parallel_for(n, [&](int64_t task, int) { results[(size_t)task].work = chains(iters, &results[(size_t)task].sink); });
  const double t1 = now_s();
  PeakRun r{0.0, t1 - t0};
  volatile float keep = 0.f;  // every chain's result is used
  for (const TaskResult& t : results) {
    r.work += t.work;
    keep = keep + t.sink;
  }
  return r;
}

PeakRun int8_peak_run(int64_t iters) {
  if (std::strcmp(qkernels().name, "avx512_vnni") != 0) return PeakRun{0.0, 0.0};
  const int n = num_threads();
  std::vector<TaskResult> results((size_t)n);
  const double t0 = now_s();
  parallel_for(n, [&](int64_t task, int) {
    results[(size_t)task].work = peak_chains_vnni(iters, &results[(size_t)task].sink);
  });
  const double t1 = now_s();
  PeakRun r{0.0, t1 - t0};
  volatile float keep = 0.f;
  for (const TaskResult& t : results) {
    r.work += t.work;
    keep = keep + t.sink;
  }
  return r;
}

int64_t copy_buffer_bytes() {
  int64_t bytes = 256 * kMiB;
#if defined(_SC_LEVEL3_CACHE_SIZE)
  const long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (llc > bytes) bytes = (int64_t)llc;
#endif
  return (bytes + kChunkBytes - 1) / kChunkBytes * kChunkBytes;
}

double copy_bandwidth_runs(int64_t bytes, int repeats, double* seconds) {
  if (bytes < 1 || repeats < 1) throw std::invalid_argument("copy_bandwidth_runs: bytes and repeats must be >= 1");
  const int64_t chunks = (bytes + kChunkBytes - 1) / kChunkBytes;
  const int64_t total = chunks * kChunkBytes;
  Buffer src = alloc_buffer(total), dst = alloc_buffer(total);
  float* s = src.get();
  float* d = dst.get();
  // Touch every page of both buffers first (in parallel, so page faults do
  // not land in the timed copies), with a pattern the copy must reproduce.
  parallel_for(chunks, [&](int64_t c, int) {
    for (int64_t i = c * kChunkFloats; i < (c + 1) * kChunkFloats; ++i) {
      s[i] = (float)(i & 0xffff);
      d[i] = -1.f;
    }
  });
  for (int r = 0; r < repeats; ++r) {
    const double t0 = now_s();
    parallel_for(chunks, [&](int64_t c, int) { copy_chunk(s + c * kChunkFloats, d + c * kChunkFloats, kChunkFloats); });
    seconds[r] = now_s() - t0;
  }
  for (int64_t c = 0; c < chunks; ++c) {  // spot check: first and last float of every chunk
    const int64_t first = c * kChunkFloats, last = first + kChunkFloats - 1;
    if (d[first] != s[first] || d[last] != s[last]) throw std::runtime_error("copy_bandwidth_runs: copy is wrong");
  }
  return 2.0 * (double)total;
}

}  // namespace cpu
}  // namespace gradsmith
