// Embedding: a table lookup and its gradient.
//
//   ids       float rows (the plan's input) -> int64 ids, each checked: a whole number in [0, vocab)
//   forward   y[i, :] = table[ids[i], :]                     (a gather: one task per block of ids)
//   backward  dtable[v, :] = sum over i with ids[i] = v of dy[i, :], in increasing i
//
// Backward is a deterministic scatter-add: the ids are bucketed by table row (a counting sort that keeps
// the positions of one row in increasing order), then each table row gathers its own rows of dy. No two
// tasks write one row and each row's sum runs in one fixed order: the same bits for any thread count, and
// the CUDA kernel's (cuda/embedding.cu sums each row in the same order). Rows no id names get 0, so the
// optimizer sees the dense gradient of every row (as Keras's JAX and PyTorch backends).
#include <string.h>

#include "cpu/ops.h"
#include "cpu/profiler.h"
#include "cpu/scratch.h"
#include "cpu/thread_pool.h"

namespace gradsmith {
namespace cpu {

i64 embedding_ids(const float* x, int64_t* ids, i64 n, i64 vocab, float* bad_value) {
  for (i64 i = 0; i < n; ++i) {
    const float v = x[i];
    // NaN fails both comparisons; whole numbers below 2^24 are exact in float32
    if (!(v >= 0.f && v < (float)vocab) || v != (float)(int64_t)v) {
      if (bad_value) *bad_value = v;
      return i;
    }
    ids[i] = (int64_t)v;
  }
  return -1;
}

void embedding_forward(const int64_t* ids, const float* table, float* y, i64 n, i64 dim) {
  GS_PROFILE_SCOPE("embedding_forward", 0.0, 8.0 * n * dim + 8.0 * n, n, dim, -1);
  constexpr i64 kIdsPerTask = 64;
  parallel_for(
      (n + kIdsPerTask - 1) / kIdsPerTask,
      [&](int64_t task, int) {
        const i64 i1 = (task + 1) * kIdsPerTask < n ? (task + 1) * kIdsPerTask : n;
        for (i64 i = task * kIdsPerTask; i < i1; ++i) memcpy(y + i * dim, table + ids[i] * dim, sizeof(float) * dim);
      },
      threads_for_elements(n * dim));
}

void embedding_backward(const int64_t* ids, const float* dy, float* dtable, float* dx, i64 n, i64 vocab, i64 dim) {
  if (dx) memset(dx, 0, sizeof(float) * n);
  GS_PROFILE_SCOPE("embedding_backward", (double)n * dim, 4.0 * (2 * n * dim + vocab * dim) + 16.0 * n, n, vocab,
                   dim);
  // Counting sort of the positions by id: start[v] .. start[v + 1] index order[], positions increasing.
  int64_t* start = scratch<int64_t, kScratchEmbeddingStart>(vocab + 1);
  int64_t* order = scratch<int64_t, kScratchEmbeddingOrder>(n > 0 ? n : 1);
  memset(start, 0, sizeof(int64_t) * (vocab + 1));
  for (i64 i = 0; i < n; ++i) ++start[ids[i] + 1];
  for (i64 v = 0; v < vocab; ++v) start[v + 1] += start[v];
  int64_t* fill = scratch<int64_t, kScratchEmbeddingFill>(vocab > 0 ? vocab : 1);
  memcpy(fill, start, sizeof(int64_t) * vocab);
  for (i64 i = 0; i < n; ++i) order[fill[ids[i]]++] = i;
  constexpr i64 kRowsPerTask = 16;
  parallel_for(
      (vocab + kRowsPerTask - 1) / kRowsPerTask,
      [&](int64_t task, int) {
        const i64 v1 = (task + 1) * kRowsPerTask < vocab ? (task + 1) * kRowsPerTask : vocab;
        for (i64 v = task * kRowsPerTask; v < v1; ++v) {
          float* g = dtable + v * dim;
          memset(g, 0, sizeof(float) * dim);
          for (i64 k = start[v]; k < start[v + 1]; ++k) {
            const float* d = dy + order[k] * dim;
            for (i64 c = 0; c < dim; ++c) g[c] += d[c];
          }
        }
      },
      threads_for_elements(vocab * dim + n * dim));
}

}  // namespace cpu
}  // namespace gradsmith
