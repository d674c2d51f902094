// 2-D convolution (NHWC, kernel (kh, kw, cin, cout) as Keras), forward and backward, through our GEMM.
//
// Rows of im2col are output pixels, its columns the patch taps in (ky, kx, c) order, which is also the order
// of the kernel's rows, so with P = out_h * out_w pixels, K = kh * kw * cin and F = cout:
//
//   forward          z = col(x) W + b        (P, K) x (K, F) per image; bias and f in the GEMM epilogue
//   backward         dz = dy * f'(z)          db = sum over every pixel of the batch of dz
//   backward-filter  dW = sum_n col(x_n)^T dz_n
//   backward-data    dx_n = col2im(dz_n W^T)  (the first layer's is skipped: nobody needs it)
//
// im2col is never built for a whole batch (for 74x74x32 inputs and 3x3 taps it is 6 MB an image): the work
// goes in tiles of output pixels whose im2col rows fit in the L2 cache, in each thread's own scratch. A 1x1
// convolution with stride 1 and no padding is the GEMM over all the batch's pixels, with no im2col.
//
// Results do not depend on the thread count: forward tiles write disjoint outputs; dW is summed over fixed
// groups of tiles (a group's tiles in order, then the groups in order) chosen from the sizes alone; each
// image's dx is scattered by one task, tile after tile.
#include <string.h>

#include "cpu/ops.h"
#include "cpu/profiler.h"
#include "cpu/scratch.h"
#include "cpu/thread_pool.h"

namespace gradsmith {
namespace cpu {
namespace {

using math::ConvGeometry;

// im2col rows per tile: about 64K floats (256 KB) of patches, at least 16 rows.
i64 tile_rows(const ConvGeometry& g) {
  const i64 rows = ((i64)1 << 16) / g.patch();
  const i64 p = g.out_pixels();
  return rows < 16 ? (p < 16 ? p : 16) : (rows < p ? rows : p);
}
i64 tiles_per_image(const ConvGeometry& g) {
  const i64 t = tile_rows(g);
  return (g.out_pixels() + t - 1) / t;
}

// col (rows p1 - p0, K) = the patches of output pixels [p0, p1) of image x; taps outside the image are 0.
void im2col(const ConvGeometry& g, const float* x, i64 p0, i64 p1, float* col) {
  const i64 C = g.in_c, K = g.patch();
  const size_t tap_bytes = sizeof(float) * (size_t)C;
  for (i64 p = p0; p < p1; ++p) {
    const i64 oy = p / g.out_w, ox = p % g.out_w;
    float* row = col + (p - p0) * K;
    for (i64 ky = 0; ky < g.k_h; ++ky) {
      const i64 iy = g.input_row(oy, ky);
      const bool row_inside = iy >= 0 && iy < g.in_h;
      for (i64 kx = 0; kx < g.k_w; ++kx, row += C) {
        const i64 ix = g.input_col(ox, kx);
        if (row_inside && ix >= 0 && ix < g.in_w)
          memcpy(row, x + (iy * g.in_w + ix) * C, tap_bytes);
        else
          memset(row, 0, tap_bytes);
      }
    }
  }
}

// dx (image) += the patches of dcol (rows p1 - p0, K) back where im2col took them; taps outside are dropped.
void col2im_add(const ConvGeometry& g, const float* dcol, i64 p0, i64 p1, float* dx) {
  const i64 C = g.in_c, K = g.patch();
  for (i64 p = p0; p < p1; ++p) {
    const i64 oy = p / g.out_w, ox = p % g.out_w;
    const float* row = dcol + (p - p0) * K;
    for (i64 ky = 0; ky < g.k_h; ++ky) {
      const i64 iy = g.input_row(oy, ky);
      const bool row_inside = iy >= 0 && iy < g.in_h;
      for (i64 kx = 0; kx < g.k_w; ++kx, row += C) {
        const i64 ix = g.input_col(ox, kx);
        if (!row_inside || ix < 0 || ix >= g.in_w) continue;
        float* to = dx + (iy * g.in_w + ix) * C;
        for (i64 c = 0; c < C; ++c) to[c] += row[c];
      }
    }
  }
}

}  // namespace

i64 conv_filter_groups(const ConvGeometry& g, i64 batch) {
  // As many partial sums of dW as fit in 4M floats, at most one per tile of the batch: enough tasks for
  // the threads when the kernel is small, bounded memory when it is large.
  const i64 units = batch * tiles_per_image(g);
  const i64 fit = ((i64)1 << 22) / (g.patch() * g.out_c);
  const i64 groups = fit < 1 ? 1 : fit;
  return groups < units ? groups : units;
}

void conv_forward(const ConvGeometry& g, const float* x, const float* W, const float* b, ActParams act, float* y,
                  float* z, i64 batch) {
  const i64 P = g.out_pixels(), K = g.patch(), F = g.out_c;
  // FLOPs per output: 2K for the GEMM, 1 for the bias, f's; bytes: x, W, b read, y (and z) written.
  GS_PROFILE_SCOPE("conv2d_forward", (2.0 * K + (b ? 1 : 0) + prof::act_flops(act, false)) * batch * P * F,
                   4.0 * (batch * g.in_pixels() * g.in_c + K * F + (b ? F : 0) + (z ? 2 : 1) * batch * P * F),
                   batch, P, F);
  Epilogue ep;
  ep.bias = b;
  ep.act = act.kind == kSoftmax ? ActParams{kLinear, 0.f} : act;
  ep.ldz = F;
  if (g.pointwise()) {
    ep.preact = z;
    gemm(false, false, batch * P, F, K, 1.f, x, K, W, F, 0.f, y, F, &ep);
  } else {
    const i64 rows = tile_rows(g), tiles = tiles_per_image(g);
    parallel_for(batch * tiles, [&](int64_t task, int) {
      const i64 n = task / tiles, p0 = (task % tiles) * rows, p1 = p0 + rows < P ? p0 + rows : P;
      float* col = scratch<float, kScratchIm2col>((size_t)(rows * K));
      im2col(g, x + n * g.in_pixels() * g.in_c, p0, p1, col);
      Epilogue tile_ep = ep;
      tile_ep.preact = z ? z + (n * P + p0) * F : nullptr;
      gemm(false, false, p1 - p0, F, K, 1.f, col, K, W, F, 0.f, y + (n * P + p0) * F, F, &tile_ep);
    });
  }
  // Softmax (over the channels) needs whole rows, which the tile epilogue does not see.
  if (act.kind == kSoftmax) activation_forward(act, y, y, batch * P, F);
}

void conv_backward(const ConvGeometry& g, const float* dy, const float* x, const float* W, const float* z,
                   ActParams act, float* scratch_floats, float* dx, float* dW, float* db, i64 batch) {
  const i64 P = g.out_pixels(), K = g.patch(), F = g.out_c, in_image = g.in_pixels() * g.in_c;
  if (batch == 0) {  // no rows: zero gradients, as the GEMM with an empty sum gives
    memset(dW, 0, sizeof(float) * (size_t)(K * F));
    if (db) memset(db, 0, sizeof(float) * (size_t)F);
    return;
  }
  // dz = dy f'(z) and db, as the dense layer's backward does, over every pixel of the batch.
  float* dz_buffer = scratch_floats;
  const float* dz = activation_grad_and_bias_sum(act, dy, z, dz_buffer, db, batch * P, F);
  float* partials = scratch_floats + batch * P * F;

  if (g.pointwise()) {
    GS_PROFILE_SCOPE("conv2d_backward_filter", 2.0 * batch * P * K * F, 4.0 * (batch * P * (K + F) + K * F),
                     batch, P, F);
    gemm(true, false, K, F, batch * P, 1.f, x, K, dz, F, 0.f, dW, F);
  } else {
    // dW: each group of tiles sums its tiles in order (into dW itself when there is one group), then the
    // groups are summed in order.
    const i64 rows = tile_rows(g), tiles = tiles_per_image(g), units = batch * tiles;
    const i64 groups = conv_filter_groups(g, batch);
    GS_PROFILE_SCOPE("conv2d_backward_filter", 2.0 * batch * P * K * F + (groups > 1 ? groups * K * F : 0),
                     4.0 * (batch * in_image + batch * P * F + K * F), batch, P, F);
    parallel_for(groups, [&](int64_t group, int) {
      float* part = groups == 1 ? dW : partials + group * K * F;
      float* col = scratch<float, kScratchIm2col>((size_t)(rows * K));
      const i64 u0 = group * units / groups, u1 = (group + 1) * units / groups;
      for (i64 u = u0; u < u1; ++u) {
        const i64 n = u / tiles, p0 = (u % tiles) * rows, p1 = p0 + rows < P ? p0 + rows : P;
        im2col(g, x + n * in_image, p0, p1, col);
        gemm(true, false, K, F, p1 - p0, 1.f, col, K, dz + (n * P + p0) * F, F, u == u0 ? 0.f : 1.f, part, F);
      }
    });
    if (groups > 1) col_sums(partials, dW, groups, K * F);
  }

  if (!dx) return;
  GS_PROFILE_SCOPE("conv2d_backward_data", 2.0 * batch * P * K * F + (g.pointwise() ? 0 : batch * P * K),
                   4.0 * (batch * P * F + K * F + batch * in_image), batch, P, F);
  if (g.pointwise()) {
    gemm(false, true, batch * P, K, F, 1.f, dz, F, W, F, 0.f, dx, K);
    return;
  }
  const i64 rows = tile_rows(g), tiles = tiles_per_image(g);
  parallel_for(batch, [&](int64_t n, int) {
    float* dcol = scratch<float, kScratchIm2col>((size_t)(rows * K));
    float* dx_n = dx + n * in_image;
    memset(dx_n, 0, sizeof(float) * (size_t)in_image);
    for (i64 t = 0; t < tiles; ++t) {
      const i64 p0 = t * rows, p1 = p0 + rows < P ? p0 + rows : P;
      gemm(false, true, p1 - p0, K, F, 1.f, dz + (n * P + p0) * F, F, W, F, 0.f, dcol, K);
      col2im_add(g, dcol, p0, p1, dx_n);
    }
  });
}

i64 conv_backward_scratch(const ConvGeometry& g, i64 batch) {
  const i64 groups = g.pointwise() ? 1 : conv_filter_groups(g, batch);
  return batch * g.out_pixels() * g.out_c + (groups > 1 ? groups * g.patch() * g.out_c : 0);
}

}  // namespace cpu
}  // namespace gradsmith
