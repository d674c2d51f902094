// Reductions in a fixed order. Floating-point sums are cut into fixed chunks
// (independent of the thread count), each chunk summed by the ISA's loop, and
// the chunk sums added in order; column sums run down the rows in order.
#include <vector>

#include "cpu/dispatch.h"
#include "cpu/ops.h"
#include "cpu/profiler.h"
#include "cpu/scratch.h"
#include "cpu/thread_pool.h"

namespace gradsmith {
namespace cpu {
namespace {

constexpr i64 kChunk = 1 << 14;

template <class F>
double chunked_sum(i64 n, F&& chunk_sum) {
  if (n <= 0) return 0.0;
  const i64 tasks = (n + kChunk - 1) / kChunk;
  double* partial = scratch<double, kScratchPartialSums>(tasks);
  parallel_for(
      tasks,
      [&](int64_t t, int) {
        const i64 b = t * kChunk, e = b + kChunk < n ? b + kChunk : n;
        partial[t] = chunk_sum(b, e);
      },
      threads_for_elements(n));
  double s = 0;
  for (i64 t = 0; t < tasks; ++t) s += partial[t];
  return s;
}

}  // namespace

double sum(const float* x, i64 n) {
  GS_PROFILE_SCOPE("sum", 1.0 * n, 4.0 * n, n, -1, -1);  // 1 add per element; x read
  const KernelTable& kt = kernels();
  return chunked_sum(n, [&](i64 b, i64 e) { return kt.sum(x, b, e); });
}

double sum_squares(const float* x, i64 n) {
  GS_PROFILE_SCOPE("sum_squares", 2.0 * n, 4.0 * n, n, -1, -1);  // a multiply and an add per element; x read
  const KernelTable& kt = kernels();
  return chunked_sum(n, [&](i64 b, i64 e) { return kt.sum_squares(x, b, e); });
}

void col_sums(const float* x, float* out, i64 rows, i64 cols) {
  // 1 add per element; x read, out written
  GS_PROFILE_SCOPE("col_sums", 1.0 * rows * cols, 4.0 * (rows * cols + cols), rows, cols, -1);
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

i64 argmax_row(const float* x, i64 n) { return math::argmax_row(x, n); }

int64_t count_correct(int kind, const float* y_true, const int64_t* labels, const float* y_pred, i64 rows, i64 cols,
                      float threshold) {
  // FLOPs: 2 compares per element (binary: threshold and target; categorical: both argmaxes; sparse: 1, one
  // argmax); bytes: y_pred read, y_true or int64 labels read.
  GS_PROFILE_SCOPE("count_correct", (kind == kCountSparse ? 1.0 : 2.0) * rows * cols,
                   4.0 * rows * cols + (kind == kCountSparse ? 8.0 * rows : 4.0 * rows * cols), rows, cols, -1);
  int64_t correct = 0;
  for (i64 r = 0; r < rows; ++r)
    correct += math::correct_in_row(kind, y_true ? y_true + r * cols : nullptr, labels ? labels[r] : -1,
                                    y_pred + r * cols, cols, threshold);
  return correct;
}

void binary_confusion(const float* y_true, const float* y_pred, i64 n, float threshold, int64_t counts[4]) {
  GS_PROFILE_SCOPE("binary_confusion", 2.0 * n, 8.0 * n, n, -1, -1);  // 2 compares per element; y_true, y_pred read
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
