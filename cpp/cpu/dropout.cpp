// Dropout from a counter-based generator: element i's coin is
// Philox4x32-10(key = seed, counter = (i / 4, offset))[i % 4], so the mask
// depends only on (seed, offset, i): not on the thread count, the chunking,
// or (later) the device. Backward is the same call on dy: no mask is stored.
#include <math.h>

#include "cpu/dispatch.h"
#include "cpu/ops.h"
#include "cpu/profiler.h"
#include "cpu/thread_pool.h"

namespace gradsmith {
namespace cpu {

namespace {

// u >= rate  <=>  (r >> 8) >= ceil(rate * 2^24), rate * 2^24 exact in double.
uint32_t keep_threshold(double rate) { return (uint32_t)ceil(rate * 16777216.0); }

// body(begin, end) over [0, n) in chunks of 16K elements on the pool: the split changes no result.
template <class F>
void over_chunks(i64 n, F&& body) {
  constexpr i64 kChunk = 1 << 14;
  parallel_for(
      (n + kChunk - 1) / kChunk,
      [&](int64_t t, int) {
        const i64 b = t * kChunk;
        body(b, b + kChunk < n ? b + kChunk : n);
      },
      threads_for_elements(n));
}

}  // namespace

void dropout(const float* x, float* y, i64 n, double rate, uint64_t seed, uint64_t offset, i64 first) {
  // FLOPs: 1 per element (the scale; Philox's bits are integer work); bytes: x read, y written.
  GS_PROFILE_SCOPE("dropout", 1.0 * n, 8.0 * n, n, -1, -1);
  const KernelTable& kt = kernels();
  const uint32_t threshold = keep_threshold(rate);
  const float keep = (float)(1.0 - rate);
  over_chunks(n, [&](i64 b, i64 e) { kt.dropout(x, y, b, e, threshold, keep, seed, offset, first); });
}

void dropout_mask(float* mask, i64 n, double rate, uint64_t seed, uint64_t offset, i64 first) {
  // FLOPs: none (integer work); bytes: the mask written.
  GS_PROFILE_SCOPE("dropout_mask", 0.0, 4.0 * n, n, -1, -1);
  const uint32_t threshold = keep_threshold(rate);
  for (i64 j = 0; j < n; ++j) mask[j] = math::dropout_kept(seed, offset, first + j, threshold) ? 1.f : 0.f;
}

void dropout_broadcast(const float* x, float* y, const float* mask, const math::NoiseShape& s, i64 batch,
                       double rate) {
  i64 n = batch;
  for (int d = 0; d < s.rank; ++d) n *= s.dims[d];
  // FLOPs: 1 per element (the scale); bytes: x read, y written (the mask is small and stays in cache).
  GS_PROFILE_SCOPE("dropout_broadcast", 1.0 * n, 8.0 * n, n, -1, -1);
  const float keep = (float)(1.0 - rate);
  over_chunks(n, [&](i64 b, i64 e) {
    for (i64 i = b; i < e; ++i) y[i] = mask[s.mask_index(i)] != 0.f ? x[i] / keep : 0.f;
  });
}

}  // namespace cpu
}  // namespace gradsmith
