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
// Three ways, chosen from the geometry alone:
//
//   pointwise  a 1x1 convolution with stride 1 and no padding is the GEMM over all the batch's pixels.
//   rows       stride 1 and dilation 1 (most convolutions), with kernel rows of at least 32 floats: no
//              im2col at all. The kw taps of kernel row ky at output pixel (oy, ox) are kw * cin contiguous
//              floats of source row oy + ky from pixel ox on, and the next pixel's taps start cin floats
//              later; so for a source of width ws, "row q = oy * ws + ox is floats [q cin, q cin + kw cin) of
//              src + ky ws cin" is a matrix the GEMM reads in place (leading dimension cin, rows overlapping),
//              and the output is the sum over ky of that matrix times W[ky]. Pixels with ox >= out_w (past
//              the right edge) are computed and dropped; the last row stops at out_w, so nothing is read past
//              the source. 'same' reads a zero-padded copy of the tile's rows. The data gradient is the same
//              correlation of the zero-padded dz with the kernel turned 180 degrees, its cin and cout swapped.
//   im2col     anything else (strides, dilation, or few channels as the first layer's 3): im2col is never
//              built for a whole batch (for 74x74x32 inputs and 3x3 taps it is 6 MB an image) but in tiles
//              of output pixels that fit in the L2 cache, in each thread's own scratch; dx by col2im.
//
// Results do not depend on the thread count: forward tiles write disjoint outputs; dW is summed over fixed
// groups of tiles (a group's tiles in order, then the groups in order) chosen from the sizes alone; dx tiles
// write disjoint rows (rows) or each image's dx is scattered by one task, tile after tile (im2col).
#include <string.h>

#include "cpu/dispatch.h"
#include "cpu/ops.h"
#include "cpu/profiler.h"
#include "cpu/scratch.h"
#include "cpu/thread_pool.h"

namespace gradsmith {
namespace cpu {
namespace {

using math::ConvGeometry;

bool rows_path(const ConvGeometry& g) {
  return !g.pointwise() && g.stride_h == 1 && g.stride_w == 1 && g.dil_h == 1 && g.dil_w == 1 &&
         g.k_w * g.in_c >= 32;
}
// The width of the source the rows path reads: the input, or its zero-padded copy.
i64 source_width(const ConvGeometry& g) { return g.out_w + g.k_w - 1; }
// Output rows per tile of the rows path: about 64K floats of wide output (and of source rows).
i64 rows_per_tile(i64 width, i64 channels, i64 out_rows) {
  const i64 rows = ((i64)1 << 16) / (width * channels);
  return rows < 1 ? 1 : (rows < out_rows ? rows : out_rows);
}

// Tiles of one image: of output rows (rows path) or of output pixels (im2col path), `size` each.
struct Tiles {
  i64 size, per_image;
};
Tiles tiles_of(const ConvGeometry& g) {
  if (rows_path(g)) {
    const i64 rows = rows_per_tile(source_width(g), g.in_c > g.out_c ? g.in_c : g.out_c, g.out_h);
    return {rows, (g.out_h + rows - 1) / rows};
  }
  // im2col rows per tile: about 64K floats (256 KB) of patches, at least 16 rows.
  const i64 p = g.out_pixels(), rows = ((i64)1 << 16) / g.patch();
  const i64 size = rows < 16 ? (p < 16 ? p : 16) : (rows < p ? rows : p);
  return {size, (p + size - 1) / size};
}

// col (rows p1 - p0, K) = the patches of output pixels [p0, p1) of image x; taps outside the image are 0.
void im2col(const ConvGeometry& g, const float* x, i64 p0, i64 p1, float* col) {
  const i64 C = g.in_c, K = g.patch();
  // No FLOPs; bytes: the patches written, about as many read (the taps overlap in cache).
  GS_PROFILE_SCOPE("im2col", 0.0, 8.0 * (p1 - p0) * K, p1 - p0, K, -1);
  const i64 span = g.k_w * C;  // a kernel row's taps: contiguous in x when dil_w == 1
  for (i64 p = p0; p < p1; ++p) {
    const i64 oy = p / g.out_w, ox = p % g.out_w;
    float* row = col + (p - p0) * K;
    const i64 ix0 = g.input_col(ox, 0), ix1 = g.input_col(ox, g.k_w - 1);
    const bool cols_inside = ix0 >= 0 && ix1 < g.in_w;
    for (i64 ky = 0; ky < g.k_h; ++ky, row += span) {
      const i64 iy = g.input_row(oy, ky);
      const bool row_inside = iy >= 0 && iy < g.in_h;
      if (row_inside && cols_inside && g.dil_w == 1) {  // the common case: one run of k_w * C floats
        const float* src = x + (iy * g.in_w + ix0) * C;
        for (i64 j = 0; j < span; ++j) row[j] = src[j];
        continue;
      }
      for (i64 kx = 0; kx < g.k_w; ++kx) {
        const i64 ix = g.input_col(ox, kx);
        float* tap = row + kx * C;
        if (row_inside && ix >= 0 && ix < g.in_w)
          memcpy(tap, x + (iy * g.in_w + ix) * C, sizeof(float) * (size_t)C);
        else
          memset(tap, 0, sizeof(float) * (size_t)C);
      }
    }
  }
}

// dx (image) += the patches of dcol (rows p1 - p0, K) back where im2col took them; taps outside are dropped.
void col2im_add(const ConvGeometry& g, const float* dcol, i64 p0, i64 p1, float* dx) {
  const i64 C = g.in_c, K = g.patch();
  // One add per patch element; bytes: the patches read, dx read and written (in cache).
  GS_PROFILE_SCOPE("col2im", 1.0 * (p1 - p0) * K, 12.0 * (p1 - p0) * K, p1 - p0, K, -1);
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

// Rows [r0, r1) of the zero-padded source of image x (pad_top rows above, pad_left columns left, width
// source_width(g)): x itself when there is no padding, else a copy in buf.
const float* source_rows(const ConvGeometry& g, const float* x, i64 r0, i64 r1, float* buf) {
  const i64 C = g.in_c, ws = source_width(g);
  if (g.pad_top == 0 && g.pad_left == 0 && ws == g.in_w && r1 - g.pad_top <= g.in_h) return x + r0 * ws * C;
  for (i64 r = r0; r < r1; ++r) {
    float* row = buf + (r - r0) * ws * C;
    const i64 iy = r - g.pad_top;
    if (iy < 0 || iy >= g.in_h) {
      memset(row, 0, sizeof(float) * (size_t)(ws * C));
      continue;
    }
    const i64 right = ws - g.pad_left - g.in_w;  // zero columns after the image (>= 0)
    memset(row, 0, sizeof(float) * (size_t)(g.pad_left * C));
    memcpy(row + g.pad_left * C, x + iy * g.in_w * C, sizeof(float) * (size_t)(g.in_w * C));
    memset(row + (g.pad_left + g.in_w) * C, 0, sizeof(float) * (size_t)((right > 0 ? right : 0) * C));
  }
  return buf;
}

// wide (rows (tr - 1) * ws + wo, n columns) = the output rows [0, tr) of the stride-1 correlation of src
// (tr + kh - 1 rows of width ws, cs channels) with kernel (kh, kw, cs, n): sum over ky of the overlapping
// rows of src + ky ws cs (leading dimension cs) times kernel row ky. Wide row r * ws + ox is output (r, ox).
void correlate_rows(const float* src, i64 ws, i64 cs, const float* kernel, i64 kh, i64 kw, i64 n, i64 tr,
                    float* wide) {
  const i64 wo = ws - kw + 1, M = (tr - 1) * ws + wo, K = kw * cs;
  for (i64 ky = 0; ky < kh; ++ky)
    gemm(false, false, M, n, K, 1.f, src + ky * ws * cs, cs, kernel + ky * K * n, n, ky ? 1.f : 0.f, wide, n);
}

void forward_rows(const ConvGeometry& g, const float* x, const float* W, const Epilogue& ep, float* y, float* z,
                  i64 batch) {
  const Tiles t = tiles_of(g);
  const i64 ws = source_width(g), C = g.in_c, F = g.out_c, wo = g.out_w, P = g.out_pixels();
  parallel_for(batch * t.per_image, [&](int64_t task, int) {
    const i64 n = task / t.per_image, oy0 = (task % t.per_image) * t.size;
    const i64 tr = oy0 + t.size < g.out_h ? t.size : g.out_h - oy0;
    float* buf = scratch<float, kScratchIm2col>((size_t)((t.size + g.k_h - 1) * ws * C));
    float* wide = scratch<float, kScratchConvWide>((size_t)(t.size * ws * F));
    const float* src = source_rows(g, x + n * g.in_pixels() * C, oy0, oy0 + tr + g.k_h - 1, buf);
    correlate_rows(src, ws, C, W, g.k_h, g.k_w, F, tr, wide);
    float* out = y + (n * P + oy0 * wo) * F;
    for (i64 r = 0; r < tr; ++r) memcpy(out + r * wo * F, wide + r * ws * F, sizeof(float) * (size_t)(wo * F));
    Epilogue tile_ep = ep;
    tile_ep.preact = z ? z + (n * P + oy0 * wo) * F : nullptr;
    kernels().gemm_epilogue(out, F, tr * wo, F, tile_ep);
  });
}

// dW (or a group's partial) += the rows path's filter gradient of one tile: for each ky,
// dW[ky] += (overlapping rows of src + ky ws cin)^T dz_wide, dz_wide being dz's rows with zeros at the
// dropped pixels.
void filter_rows_tile(const ConvGeometry& g, const float* x_n, const float* dz_n, i64 oy0, i64 tr, float beta,
                      float* part) {
  const i64 ws = source_width(g), C = g.in_c, F = g.out_c, wo = g.out_w, K = g.k_w * C;
  const Tiles t = tiles_of(g);
  float* buf = scratch<float, kScratchIm2col>((size_t)((t.size + g.k_h - 1) * ws * C));
  float* dz_wide = scratch<float, kScratchConvWide>((size_t)(t.size * ws * F));
  const float* src = source_rows(g, x_n, oy0, oy0 + tr + g.k_h - 1, buf);
  for (i64 r = 0; r < tr; ++r) {
    memcpy(dz_wide + r * ws * F, dz_n + (oy0 + r) * wo * F, sizeof(float) * (size_t)(wo * F));
    if (r + 1 < tr) memset(dz_wide + (r * ws + wo) * F, 0, sizeof(float) * (size_t)((ws - wo) * F));
  }
  const i64 M = (tr - 1) * ws + wo;
  for (i64 ky = 0; ky < g.k_h; ++ky)
    gemm(true, false, K, F, M, 1.f, src + ky * ws * C, C, dz_wide, F, beta, part + ky * K * F, F);
}

// dx of image n by the rows path: the correlation of dz zero-padded by (kh - 1, kw - 1) with the kernel turned
// 180 degrees (W_rot[ky][kx][f][c] = W[kh-1-ky][kw-1-kx][c][f]) is the gradient of the zero-padded source;
// its rows and columns inside the input are dx.
void data_rows(const ConvGeometry& g, const float* dz, const float* w_rot, float* dx, i64 batch) {
  const i64 C = g.in_c, F = g.out_c, wo = g.out_w, ho = g.out_h;
  const i64 wq = wo + 2 * (g.k_w - 1);  // padded dz width; the correlation is source_width(g) wide
  // Source rows inside the input: [pad_top, pad_top + in_h), in tiles.
  const i64 size = rows_per_tile(wq, C > F ? C : F, g.in_h), per_image = (g.in_h + size - 1) / size;
  parallel_for(batch * per_image, [&](int64_t task, int) {
    const i64 n = task / per_image, iy0 = (task % per_image) * size;
    const i64 tr = iy0 + size < g.in_h ? size : g.in_h - iy0;
    const i64 r0 = iy0 + g.pad_top;  // first source row of the tile
    // Rows [r0, r0 + tr + kh - 1) of dz padded by kh - 1 rows and kw - 1 columns each side.
    float* dzp = scratch<float, kScratchIm2col>((size_t)((size + g.k_h - 1) * wq * F));
    for (i64 q = 0; q < tr + g.k_h - 1; ++q) {
      float* row = dzp + q * wq * F;
      const i64 oy = r0 + q - (g.k_h - 1);
      memset(row, 0, sizeof(float) * (size_t)(wq * F));
      if (oy >= 0 && oy < ho)
        memcpy(row + (g.k_w - 1) * F, dz + (n * ho + oy) * wo * F, sizeof(float) * (size_t)(wo * F));
    }
    float* wide = scratch<float, kScratchConvWide>((size_t)(size * wq * C));
    correlate_rows(dzp, wq, F, w_rot, g.k_h, g.k_w, C, tr, wide);
    for (i64 r = 0; r < tr; ++r)
      memcpy(dx + ((n * g.in_h + iy0 + r) * g.in_w) * C, wide + (r * wq + g.pad_left) * C,
             sizeof(float) * (size_t)(g.in_w * C));
  });
}

}  // namespace

i64 conv_filter_groups(const ConvGeometry& g, i64 batch) {
  // As many partial sums of dW as fit in 4M floats, at most one per tile of the batch: enough tasks for
  // the threads when the kernel is small, bounded memory when it is large.
  const i64 units = batch * tiles_of(g).per_image;
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
  } else if (rows_path(g)) {
    forward_rows(g, x, W, ep, y, z, batch);
  } else {
    const Tiles t = tiles_of(g);
    parallel_for(batch * t.per_image, [&](int64_t task, int) {
      const i64 n = task / t.per_image, p0 = (task % t.per_image) * t.size, p1 = p0 + t.size < P ? p0 + t.size : P;
      float* col = scratch<float, kScratchIm2col>((size_t)(t.size * K));
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
  const bool rows = rows_path(g);

  if (g.pointwise()) {
    GS_PROFILE_SCOPE("conv2d_backward_filter", 2.0 * batch * P * K * F, 4.0 * (batch * P * (K + F) + K * F),
                     batch, P, F);
    gemm(true, false, K, F, batch * P, 1.f, x, K, dz, F, 0.f, dW, F);
  } else {
    // dW: each group of tiles sums its tiles in order (into dW itself when there is one group), then the
    // groups are summed in order.
    const Tiles t = tiles_of(g);
    const i64 units = batch * t.per_image, groups = conv_filter_groups(g, batch);
    GS_PROFILE_SCOPE("conv2d_backward_filter", 2.0 * batch * P * K * F + (groups > 1 ? groups * K * F : 0),
                     4.0 * (batch * in_image + batch * P * F + K * F), batch, P, F);
    parallel_for(groups, [&](int64_t group, int) {
      float* part = groups == 1 ? dW : partials + group * K * F;
      const i64 u0 = group * units / groups, u1 = (group + 1) * units / groups;
      for (i64 u = u0; u < u1; ++u) {
        const i64 n = u / t.per_image, first = (u % t.per_image) * t.size;
        const float beta = u == u0 ? 0.f : 1.f;
        if (rows) {
          const i64 tr = first + t.size < g.out_h ? t.size : g.out_h - first;
          filter_rows_tile(g, x + n * in_image, dz + n * P * F, first, tr, beta, part);
        } else {
          const i64 p1 = first + t.size < P ? first + t.size : P;
          float* col = scratch<float, kScratchIm2col>((size_t)(t.size * K));
          im2col(g, x + n * in_image, first, p1, col);
          gemm(true, false, K, F, p1 - first, 1.f, col, K, dz + (n * P + first) * F, F, beta, part, F);
        }
      }
    });
    if (groups > 1) col_sums(partials, dW, groups, K * F);
  }

  if (!dx) return;
  GS_PROFILE_SCOPE("conv2d_backward_data", 2.0 * batch * P * K * F + (g.pointwise() || rows ? 0 : batch * P * K),
                   4.0 * (batch * P * F + K * F + batch * in_image), batch, P, F);
  if (g.pointwise()) {
    gemm(false, true, batch * P, K, F, 1.f, dz, F, W, F, 0.f, dx, K);
    return;
  }
  if (rows) {
    // The kernel turned 180 degrees with cin and cout swapped, (kh, kw, F, C), once per call.
    float* w_rot = scratch<float, kScratchConvKernel>((size_t)(K * F));
    const i64 C = g.in_c, taps = g.k_h * g.k_w;
    for (i64 t = 0; t < taps; ++t)
      for (i64 c = 0; c < C; ++c)
        for (i64 f = 0; f < F; ++f) w_rot[((taps - 1 - t) * F + f) * C + c] = W[(t * C + c) * F + f];
    data_rows(g, dz, w_rot, dx, batch);
    return;
  }
  const Tiles t = tiles_of(g);
  parallel_for(batch, [&](int64_t n, int) {
    float* dcol = scratch<float, kScratchIm2col>((size_t)(t.size * K));
    float* dx_n = dx + n * in_image;
    memset(dx_n, 0, sizeof(float) * (size_t)in_image);
    for (i64 i = 0; i < t.per_image; ++i) {
      const i64 p0 = i * t.size, p1 = p0 + t.size < P ? p0 + t.size : P;
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
