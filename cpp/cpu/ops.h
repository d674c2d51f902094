// The CPU kernels behind gradsmith.ops, one line each. Each takes pointers and
// sizes that the caller has checked, allocates nothing it keeps, and splits its
// work across the thread pool in a way that does not change the result.
//
// Conventions: "=" outputs are overwritten; nothing accumulates into outputs.
#pragma once

#include <stdint.h>

#include <vector>

#include "cpu/gemm.h"
#include "cpu/kernel_table.h"
#include "math/broadcast.h"
#include "math/conv.h"
#include "math/recurrent.h"
#include "math/rows.h"

namespace gradsmith {
namespace cpu {

// ---- activations (activations.cpp); softmax is over the last axis of (rows, cols)
// y = f(z)
void activation_forward(ActParams act, const float* z, float* y, i64 rows, i64 cols);
// dz = dy * f'(z); for softmax dz = y * (dy - sum_j dy_j y_j) with y = softmax(z)
void activation_backward(ActParams act, const float* dy, const float* z, float* dz, i64 rows, i64 cols);

// ---- dense layer (dense.cpp); x (batch, in), W (in, units), b (units,)
// z = x @ W + b (saved when z != null) ; y = f(z)
void dense_forward(const float* x, const float* W, const float* b, ActParams act, float* y, float* z, i64 batch,
                   i64 in, i64 units);
// dz = dy * f'(z) (into dz_scratch) ; db = sum_rows dz ; dW = x^T dz ; dx = dz W^T
// dx and db may be null (not needed).
void dense_backward(const float* dy, const float* x, const float* W, const float* z, ActParams act, float* dz_scratch,
                    float* dx, float* dW, float* db, i64 batch, i64 in, i64 units);

// dz = dy * f'(z) (into dz_scratch, or dy itself when f is linear) and db = sum_rows dz (db may be null), over
// (rows, cols); returns dz. The step both the dense and the convolution backward passes start with.
const float* activation_grad_and_bias_sum(ActParams act, const float* dy, const float* z, float* dz_scratch, float* db,
                                          i64 rows, i64 cols);

// ---- 2-D convolution (conv.cpp), NHWC: x (batch, in_h, in_w, in_c), W (k_h, k_w, in_c, out_c), b (out_c,),
// y and z (batch, out_h, out_w, out_c); the geometry (math/conv.h) checked by the caller.
// z = conv(x, W) + b (saved when z != null) ; y = f(z)
void conv_forward(const math::ConvGeometry& g, const float* x, const float* W, const float* b, ActParams act, float* y,
                  float* z, i64 batch);
// dz = dy * f'(z); db = sum dz; dW = sum_n col(x_n)^T dz_n; dx = col2im(dz W^T) (dx and db may be null).
// scratch holds conv_backward_scratch(g, batch) floats.
void conv_backward(const math::ConvGeometry& g, const float* dy, const float* x, const float* W, const float* z,
                   ActParams act, float* scratch, float* dx, float* dW, float* db, i64 batch);
i64 conv_backward_scratch(const math::ConvGeometry& g, i64 batch);
// How many partial sums of dW backward makes (a function of the sizes only, so bits do not depend on threads).
i64 conv_filter_groups(const math::ConvGeometry& g, i64 batch);

// ---- embedding (embedding.cpp): ids (n,) int64 in [0, vocab), table (vocab, dim), y and dy (n, dim).
// embedding_ids: float ids (the plan's input rows) -> int64; returns the index of the first that is not a whole
// number in [0, vocab) (then ids is partly written and *bad_value is that id, when bad_value is not null), or -1.
i64 embedding_ids(const float* x, int64_t* ids, i64 n, i64 vocab, float* bad_value);
// y[i] = table[ids[i]]
void embedding_forward(const int64_t* ids, const float* table, float* y, i64 n, i64 dim);
// dtable[v] = sum of dy[i] over ids[i] == v, i increasing (every row written, 0 where no id names it); dx (n,),
// when not null, is zeroed (ids have no gradient).
void embedding_backward(const int64_t* ids, const float* dy, float* dtable, float* dx, i64 n, i64 vocab, i64 dim);

// ---- pooling (pool.cpp), NHWC, per channel (math::pool_value / pool_input_grad): x (batch, in_h, in_w, c),
// y (batch, out_h, out_w, c); arg (as y) receives the max's input pixel for backward (max mode; may be null
// in inference).
void pool_forward(const math::PoolGeometry& g, const float* x, float* y, float* arg, i64 batch);
// dx (as x) = the gradient gathered from every window holding each input element.
void pool_backward(const math::PoolGeometry& g, const float* dy, const float* arg, float* dx, i64 batch);

// ---- recurrent layers (recurrent.cpp), gate formulas in math/recurrent.h. x (batch, steps, in), W (in, G u),
// U (u, G u), b (G u,) or, for GRU with reset_after, (2, G u) (input bias, recurrent bias); G = 1, 3, 4 for
// SimpleRNN, GRU (z, r, h), LSTM (i, f, c, o). Step t reads x's step go_backwards ? T-1-t : t.
using RnnSpec = math::RnnSpec;  // math/recurrent.h
// hseq (batch, steps, u) = h after each step (processing order). h0 (and LSTM's c0) (batch, u): the initial
// state. extra (batch, steps, u): LSTM's c after each step, GRU's recurrent candidate part (reset_after) or
// r h_prev (not); unused by SimpleRNN (may be null). gates (batch, steps, G u): the activated gates, kept for
// backward. hprev (batch, steps, u): h before each step, for backward (null in inference).
// scratch: math::rnn_forward_scratch(spec) floats. h0 and c0 may be null (zeros).
void rnn_forward(const RnnSpec& s, const float* x, const float* W, const float* U, const float* b, const float* h0,
                 const float* c0, float* hseq, float* extra, float* gates, float* hprev, float* scratch);
// Gradients from dy_seq (batch, steps, u) (return_sequences) and / or dy_last (batch, u) (the last h); either may
// be null. gates is overwritten (by dP); dx, db and c0 may be null. scratch: math::rnn_backward_scratch(spec)
// floats.
void rnn_backward(const RnnSpec& s, const float* x, const float* W, const float* U, const float* c0,
                  const float* dy_seq, const float* dy_last, float* gates, const float* hprev, const float* extra,
                  float* scratch, float* dx, float* dW, float* dU, float* db);

// ---- losses (losses.cpp): value (mean over the batch, Keras 'sum_over_batch_size')
// and gradient d value / d y_pred in one pass
using ::gradsmith::LossArgs;  // math/rows.h
using ::gradsmith::LossKind;
using ::gradsmith::kMse;
using ::gradsmith::kMae;
using ::gradsmith::kHuber;
using ::gradsmith::kBinaryXent;
using ::gradsmith::kCategoricalXent;
using ::gradsmith::kSparseCategoricalXent;
using ::gradsmith::kNumLosses;
// y_true (rows, cols) or, for the sparse loss, labels (rows,) already checked to lie in [0, cols).
double loss_and_grad(const LossArgs& args, const float* y_true, const int64_t* labels, const float* y_pred,
                     const float* sample_weight, float* grad, i64 rows, i64 cols);

// ---- optimizers (optimizers.cpp): one fused pass over every buffer
struct ParamBuffer {
  float* w;
  const float* g;
  float* s0;
  float* s1;
  float* s2;
  i64 n;
  const float* keep;  // the pruning mask (gradsmith.pruning): w stays 0 where keep is 0; null: none
};
void optimizer_step(const OptimizerArgs& args, const std::vector<ParamBuffer>& buffers, int clip_kind,
                    float clip);

// ---- dropout (dropout.cpp): y = kept ? x / (1 - rate) : 0, mask from Philox(seed; index, offset); element i
// draws the coin of index first + i (a data-parallel rank's share of a batch draws the whole batch's coins)
void dropout(const float* x, float* y, i64 n, double rate, uint64_t seed, uint64_t offset, i64 first = 0);
// Dropout with a noise shape: mask[j] = 1 where element j of the mask keeps, else 0 (the same coins as
// dropout draws for element j); then y[e] = mask[s.mask_index(e)] ? x[e] / (1 - rate) : 0 over the batch.
void dropout_mask(float* mask, i64 n, double rate, uint64_t seed, uint64_t offset, i64 first = 0);
void dropout_broadcast(const float* x, float* y, const float* mask, const math::NoiseShape& s, i64 batch,
                       double rate);

// ---- batch normalization (batchnorm.cpp), per column of x (rows, cols); gamma, beta may be null (1, 0).
// training: mean and var (biased) are computed from x and written; else they are read (the moving statistics).
// y = x s + (beta - mean s), s = gamma / sqrt(var + eps).
void batch_norm_forward(const float* x, const float* gamma, const float* beta, float eps, bool training, float* mean,
                        float* var, float* y, i64 rows, i64 cols);
// dbeta = sum dy, dgamma = sum dy xhat (either may be null); dx (may be null) through the batch statistics when
// batch_statistics, else through the constant (moving) ones.
void batch_norm_backward(const float* dy, const float* x, const float* mean, const float* var, const float* gamma,
                         float eps, bool batch_statistics, float* dx, float* dgamma, float* dbeta, i64 rows,
                         i64 cols);
// The parts of both passes for a data-parallel rank, whose statistics and sums run over every rank's rows
// (gradsmith.distribution): the caller sums the partial sums over the ranks in between.
//   column_sums:   sums[j] = sum_i x_ij, or with center sum_i (x_ij - center_j)^2 (in double, as forward)
//   backward_sums: sum_dy[j] = sum_i dy_ij, sum_dy_xhat[j] = sum_i dy_ij xhat_ij (in double, as backward)
//   backward_dx:   dx through the statistics of total_rows rows, from the summed sums (as backward's dx)
void batch_norm_column_sums(const float* x, const float* center, double* sums, i64 rows, i64 cols);
void batch_norm_backward_sums(const float* dy, const float* x, const float* mean, const float* var, float eps,
                              double* sum_dy, double* sum_dy_xhat, i64 rows, i64 cols);
void batch_norm_backward_dx(const float* dy, const float* x, const float* mean, const float* var, const float* gamma,
                            float eps, const double* sum_dy, const double* sum_dy_xhat, float* dx, i64 rows, i64 cols,
                            i64 total_rows);
// moving[j] = moving[j] * momentum + value[j] * (1 - momentum) (math::moving_average), j < n.
void moving_average(float* moving, const float* value, double momentum, i64 n);

// ---- reductions (reductions.cpp): fixed order, identical for any thread count
double sum(const float* x, i64 n);
double sum_squares(const float* x, i64 n);
void col_sums(const float* x, float* out, i64 rows, i64 cols);
using ::gradsmith::CountKind;  // math/rows.h
using ::gradsmith::kCountBinary;
using ::gradsmith::kCountCategorical;
using ::gradsmith::kCountSparse;
// Correct predictions. binary: float(p > threshold) == t, element-wise over rows*cols;
// categorical: argmax p == argmax t; sparse: argmax p == label.
int64_t count_correct(int kind, const float* y_true, const int64_t* labels, const float* y_pred, i64 rows, i64 cols,
                      float threshold);
// tp, fp, tn, fn with predicted positive iff p > threshold, actual positive iff t != 0.
void binary_confusion(const float* y_true, const float* y_pred, i64 n, float threshold, int64_t counts[4]);

// First index of the maximum; a NaN counts as the maximum (as np.argmax).
i64 argmax_row(const float* x, i64 n);

}  // namespace cpu
}  // namespace gradsmith
