// Reductions in a fixed order. Floating-point sums are cut into fixed chunks
// (independent of the thread count), each chunk summed by the ISA's loop, and
// the chunk sums added in order; column sums run down the rows in order.
#include <vector>

#include "cpu/dispatch.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"

namespace gradsmith {
namespace cpu {
namespace {

constexpr i64 kChunk = 1 << 14;

template <class F>
double chunked_sum(i64 n, F&& chunk_sum) {
  if (n <= 0) return 0.0;
  const i64 tasks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(tasks);
  parallel_for(
      tasks,
      [&](int64_t t, int) {
        const i64 b = t * kChunk, e = b + kChunk < n ? b + kChunk : n;
        partial[t] = chunk_sum(b, e);
      },
      threads_for_elements(n));
  double s = 0;
  for (double p : partial) s += p;
  return s;
}

}  // namespace

double sum(const float* x, i64 n) {
  const KernelTable& kt = kernels();
  return chunked_sum(n, [&](i64 b, i64 e) { return kt.sum(x, b, e); });
}

double sum_squares(const float* x, i64 n) {
  const KernelTable& kt = kernels();
  return chunked_sum(n, [&](i64 b, i64 e) { return kt.sum_squares(x, b, e); });
}

void col_sums(const float* x, float* out, i64 rows, i64 cols) {
  const KernelTable& kt = kernels();
  constexpr i64 kCols = 256;
  parallel_for(
      (cols + kCols - 1) / kCols,
      [&](int64_t t, int) {
        const i64 c0 = t * kCols, c1 = c0 + kCols < cols ? c0 + kCols : cols;
        kt.col_sums(x, out, rows, cols, c0, c1);
      },
      threads_for_elements(rows * cols));
}

i64 argmax_row(const float* x, i64 n) {
  i64 best = 0;
  for (i64 j = 0; j < n; ++j) {
    if (x[j] != x[j]) return j;
    if (x[j] > x[best]) best = j;
  }
  return best;
}

int64_t count_correct(int kind, const float* y_true, const int64_t* labels, const float* y_pred, i64 rows, i64 cols,
                      float threshold) {
  int64_t correct = 0;
  if (kind == kCountBinary) {
    for (i64 i = 0; i < rows * cols; ++i) correct += (y_pred[i] > threshold ? 1.f : 0.f) == y_true[i];
  } else {
    for (i64 r = 0; r < rows; ++r) {
      const i64 want = kind == kCountSparse ? labels[r] : argmax_row(y_true + r * cols, cols);
      correct += argmax_row(y_pred + r * cols, cols) == want;
    }
  }
  return correct;
}

void binary_confusion(const float* y_true, const float* y_pred, i64 n, float threshold, int64_t counts[4]) {
  int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  for (i64 i = 0; i < n; ++i) {
    const bool pred = y_pred[i] > threshold, actual = y_true[i] != 0.f;
    tp += pred && actual;
    fp += pred && !actual;
    tn += !pred && !actual;
    fn += !pred && actual;
  }
  counts[0] = tp;
  counts[1] = fp;
  counts[2] = tn;
  counts[3] = fn;
}

}  // namespace cpu
}  // namespace gradsmith
