// Where a 2-D convolution or pooling window reads, in NHWC images (channels last, as Keras). Shared by the
// CPU kernels and the CUDA kernels, so both index the same way.
//
// Output pixel (oy, ox) with kernel tap (ky, kx) reads input pixel
//   iy = oy * stride_h + ky * dilation_h - pad_top,   ix = ox * stride_w + kx * dilation_w - pad_left
// and a pixel outside the image reads zero (convolution) or is left out of the window (pooling).
//
// Output sizes (Keras / TensorFlow):
//   'valid'  out = floor((in - span) / stride) + 1, span = (k - 1) * dilation + 1, no padding
//   'same'   out = ceil(in / stride), padding total = max((out - 1) * stride + span - in, 0),
//            pad_before = total / 2 (the odd one goes after)
#pragma once

#include <stdint.h>

#include <string>

#include "math/elementwise.h"

namespace gradsmith {
namespace math {

// Output size and padding before, along one axis; false when the window does not fit ('valid' with
// in < span) or a size is not positive.
GS_HD bool window_output(int64_t in, int64_t k, int64_t stride, int64_t dilation, bool same, int64_t* out,
                         int64_t* pad_before) {
  if (in < 1 || k < 1 || stride < 1 || dilation < 1) return false;
  if (k - 1 > (INT64_MAX - 1) / dilation) return false;
  const int64_t span = (k - 1) * dilation + 1;
  if (same) {
    *out = (in + stride - 1) / stride;
    const int64_t need = (*out - 1) * stride + span - in;
    *pad_before = need > 0 ? need / 2 : 0;
    return true;
  }
  if (in < span) return false;
  *out = (in - span) / stride + 1;
  *pad_before = 0;
  return true;
}

// One convolution's shapes: input (in_h, in_w, in_c) per image, kernel (k_h, k_w, in_c, out_c) as Keras
// stores it, output (out_h, out_w, out_c).
struct ConvGeometry {
  int64_t in_h, in_w, in_c;
  int64_t out_h, out_w, out_c;
  int64_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;

  GS_HD int64_t in_pixels() const { return in_h * in_w; }
  GS_HD int64_t out_pixels() const { return out_h * out_w; }
  // The GEMM's inner size: one row of im2col, taps in (ky, kx, c) order = the kernel's row order.
  GS_HD int64_t patch() const { return k_h * k_w * in_c; }
  // A 1x1 convolution with stride 1 and no padding is a Dense layer over the pixels: no im2col.
  GS_HD bool pointwise() const {
    return k_h == 1 && k_w == 1 && stride_h == 1 && stride_w == 1 && pad_top == 0 && pad_left == 0 &&
           out_h == in_h && out_w == in_w;
  }
  // The input row iy that output row oy reads with tap ky (may lie outside [0, in_h): padding).
  GS_HD int64_t input_row(int64_t oy, int64_t ky) const { return oy * stride_h + ky * dil_h - pad_top; }
  GS_HD int64_t input_col(int64_t ox, int64_t kx) const { return ox * stride_w + kx * dil_w - pad_left; }
};

// Pooling over windows of (pool_h, pool_w) pixels of each channel; global pooling is one window the size of
// the image.
enum PoolMode : int { kPoolMax = 0, kPoolAverage = 1 };
#define GS_POOL_MODES(X) X(math::kPoolMax, "max") X(math::kPoolAverage, "average")

struct PoolGeometry {
  int64_t in_h, in_w, channels;
  int64_t out_h, out_w;
  int64_t pool_h, pool_w, stride_h, stride_w, pad_top, pad_left;
  int mode;

  GS_HD int64_t in_size() const { return in_h * in_w * channels; }
  GS_HD int64_t out_size() const { return out_h * out_w * channels; }
  // The window of output row oy, clipped to the image: input rows [*y0, *y1).
  GS_HD void rows_of(int64_t oy, int64_t* y0, int64_t* y1) const {
    const int64_t a = oy * stride_h - pad_top, b = a + pool_h;
    *y0 = a < 0 ? 0 : a;
    *y1 = b > in_h ? in_h : b;
  }
  GS_HD void cols_of(int64_t ox, int64_t* x0, int64_t* x1) const {
    const int64_t a = ox * stride_w - pad_left, b = a + pool_w;
    *x0 = a < 0 ? 0 : a;
    *x1 = b > in_w ? in_w : b;
  }
  // The output rows whose windows hold input row iy: [*o0, *o1).
  GS_HD void outputs_of_row(int64_t iy, int64_t* o0, int64_t* o1) const {
    const int64_t p = iy + pad_top;  // oy * stride <= p < oy * stride + pool_h
    const int64_t lo = p - pool_h + 1;
    *o0 = lo <= 0 ? 0 : (lo + stride_h - 1) / stride_h;
    const int64_t hi = p / stride_h + 1;
    *o1 = hi < out_h ? hi : out_h;
  }
  GS_HD void outputs_of_col(int64_t ix, int64_t* o0, int64_t* o1) const {
    const int64_t p = ix + pad_left;
    const int64_t lo = p - pool_w + 1;
    *o0 = lo <= 0 ? 0 : (lo + stride_w - 1) / stride_w;
    const int64_t hi = p / stride_w + 1;
    *o1 = hi < out_w ? hi : out_w;
  }
};

// The pooled values of output pixel (oy, ox), channels [c0, c0 + n): x points at channel c0 of an image
// (in_h, in_w, channels); y and arg receive n values each (arg may be null).
//   max:     the window's maximum; arg = the input pixel (iy * in_w + ix) of its first occurrence, as a float
//            (exact below 2^24 pixels); a NaN anywhere in the window is the result (its first occurrence)
//   average: the mean over the window's pixels inside the image (TensorFlow's 'same' divides by those)
// Channels are the inner loop: one pass over the window serves every channel (vectorizable on the CPU; a
// CUDA thread takes n = 1).
// (Outputs never overlap inputs; __restrict__ lets the compiler vectorize the channel loops.)
GS_HD void pool_pixel(const PoolGeometry& g, const float* __restrict__ x, int64_t oy, int64_t ox, int64_t n,
                      float* __restrict__ y, float* __restrict__ arg) {
  int64_t y0, y1, x0, x1;
  g.rows_of(oy, &y0, &y1);
  g.cols_of(ox, &x0, &x1);
  const float* first = x + (y0 * g.in_w + x0) * g.channels;
  for (int64_t j = 0; j < n; ++j) y[j] = first[j];
  if (g.mode == kPoolAverage) {
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = iy == y0 ? x0 + 1 : x0; ix < x1; ++ix) {
        const float* p = x + (iy * g.in_w + ix) * g.channels;
        for (int64_t j = 0; j < n; ++j) y[j] += p[j];
      }
    const float count = (float)((y1 - y0) * (x1 - x0));
    for (int64_t j = 0; j < n; ++j) y[j] /= count;
    return;
  }
  const float first_at = (float)(y0 * g.in_w + x0);
  if (arg)
    for (int64_t j = 0; j < n; ++j) arg[j] = first_at;
  for (int64_t iy = y0; iy < y1; ++iy)
    for (int64_t ix = iy == y0 ? x0 + 1 : x0; ix < x1; ++ix) {
      const float* p = x + (iy * g.in_w + ix) * g.channels;
      const float at = (float)(iy * g.in_w + ix);
      // Take v when it is larger, or a NaN; once the best is a NaN it stays.
      if (arg) {
        for (int64_t j = 0; j < n; ++j) {
          const float v = p[j], best = y[j];
          const bool take = (best == best) & ((v > best) | (v != v));  // no branches: the loop vectorizes
          y[j] = take ? v : best;
          arg[j] = take ? at : arg[j];
        }
      } else {
        for (int64_t j = 0; j < n; ++j) {
          const float v = p[j], best = y[j];
          y[j] = (best == best) & ((v > best) | (v != v)) ? v : best;
        }
      }
    }
}

// The gradient reaching input pixel (iy, ix), channels [c0, c0 + n), of one image, gathered from every window
// that holds it (so no two outputs write one element; the sum runs over oy, then ox, ascending). dy and arg
// point at channel c0 of the image's outputs; dx receives n values.
//   max:     sum of dy over the windows whose arg (as pool_pixel wrote it) is this pixel
//   average: sum of dy / (pixels of that window inside the image)
GS_HD void pool_pixel_grad(const PoolGeometry& g, const float* __restrict__ dy, const float* __restrict__ arg,
                           int64_t iy, int64_t ix, int64_t n, float* __restrict__ dx) {
  int64_t oy0, oy1, ox0, ox1;
  g.outputs_of_row(iy, &oy0, &oy1);
  g.outputs_of_col(ix, &ox0, &ox1);
  const float here = (float)(iy * g.in_w + ix);
  for (int64_t j = 0; j < n; ++j) dx[j] = 0.f;
  for (int64_t oy = oy0; oy < oy1; ++oy)
    for (int64_t ox = ox0; ox < ox1; ++ox) {
      const int64_t o = (oy * g.out_w + ox) * g.channels;
      if (g.mode == kPoolMax) {
        for (int64_t j = 0; j < n; ++j) {
          const float d = dy[o + j];  // read unconditionally: the loop vectorizes
          dx[j] += arg[o + j] == here ? d : 0.f;
        }
      } else {
        int64_t y0, y1, x0, x1;
        g.rows_of(oy, &y0, &y1);
        g.cols_of(ox, &x0, &x1);
        const float count = (float)((y1 - y0) * (x1 - x0));
        for (int64_t j = 0; j < n; ++j) dx[j] += dy[o + j] / count;
      }
    }
}

// One channel c of each, as a CUDA thread computes it: the same arithmetic as a run of channels.
GS_HD float pool_value(const PoolGeometry& g, const float* x, int64_t oy, int64_t ox, int64_t c, int64_t* arg) {
  float y, at = 0.f;
  pool_pixel(g, x + c, oy, ox, 1, &y, &at);
  *arg = (int64_t)at;
  return y;
}
GS_HD float pool_input_grad(const PoolGeometry& g, const float* dy, const float* arg, int64_t iy, int64_t ix,
                            int64_t c) {
  float dx;
  pool_pixel_grad(g, dy + c, arg ? arg + c : nullptr, iy, ix, 1, &dx);
  return dx;
}

// Padding modes, as the layers send them.
enum PaddingMode : int { kPadValid = 0, kPadSame = 1, kPadCausal = 2 };
#define GS_PADDINGS(X) X(math::kPadValid, "valid") X(math::kPadSame, "same") X(math::kPadCausal, "causal")

// Fills *g for images (in_h, in_w, in_c) and a (k_h, k_w, in_c, filters) kernel; returns why not, or "".
// 'causal' (Conv1D, in_h = k_h = 1) pads (k_w - 1) * dil_w on the left, then works as 'valid'.
inline std::string conv_geometry(int64_t in_h, int64_t in_w, int64_t in_c, int64_t filters, int64_t k_h, int64_t k_w,
                                 int64_t stride_h, int64_t stride_w, int64_t dil_h, int64_t dil_w, int padding,
                                 ConvGeometry* g) {
  constexpr int64_t kMaxSide = (int64_t)1 << 20;
  for (int64_t v : {k_h, k_w, stride_h, stride_w, dil_h, dil_w})
    if (v < 1 || v > kMaxSide) return "kernel sizes, strides and dilation rates must be in [1, 2^20]";
  if (in_h < 1 || in_w < 1 || in_c < 1 || filters < 1 || in_h > kMaxSide || in_w > kMaxSide || in_c > kMaxSide ||
      filters > kMaxSide)
    return "image sides, channels and filters must be in [1, 2^20]";
  if (padding != kPadValid && padding != kPadSame && !(padding == kPadCausal && in_h == 1 && k_h == 1))
    return "padding must be 'valid', 'same' or (one-dimensional) 'causal'";
  *g = ConvGeometry{in_h, in_w, in_c, 0, 0, filters, k_h, k_w, stride_h, stride_w, dil_h, dil_w, 0, 0};
  int64_t pad_w = 0;
  const bool same = padding == kPadSame;
  const int64_t causal = padding == kPadCausal ? (k_w - 1) * dil_w : 0;
  if (!window_output(in_h, k_h, stride_h, dil_h, same, &g->out_h, &g->pad_top) ||
      !window_output(in_w + causal, k_w, stride_w, dil_w, same, &g->out_w, &pad_w))
    return "the kernel (with its dilation) is larger than the input";
  g->pad_left = causal ? causal : pad_w;
  // Every size a kernel multiplies stays far from overflow: (2^20)^2 pixels * 2^20 channels < 2^63 is not
  // guaranteed, so the products are bounded here.
  const double patch = (double)k_h * k_w * in_c, out = (double)g->out_h * g->out_w * filters;
  const double in = (double)in_h * in_w * in_c;
  if (patch * filters > 4e18 || out > 4e18 || in > 4e18) return "a size overflows";
  return "";
}

// Fills *g for pooling windows over images (in_h, in_w, channels); global: one window the size of the image.
inline std::string pool_geometry(int64_t in_h, int64_t in_w, int64_t channels, int mode, bool global, int64_t pool_h,
                                 int64_t pool_w, int64_t stride_h, int64_t stride_w, int padding, PoolGeometry* g) {
  constexpr int64_t kMaxSide = (int64_t)1 << 20;
  if (mode != kPoolMax && mode != kPoolAverage) return "mode must be max or average";
  if (in_h < 1 || in_w < 1 || channels < 1 || in_h > kMaxSide || in_w > kMaxSide || channels > kMaxSide)
    return "image sides and channels must be in [1, 2^20]";
  // The max's position is kept as a float: exact below 2^24 pixels.
  if (in_h * in_w > ((int64_t)1 << 24)) return "images of more than 2^24 pixels are not supported";
  if ((double)in_h * in_w * channels > 4e18) return "a size overflows";
  if (global) {
    *g = PoolGeometry{in_h, in_w, channels, 1, 1, in_h, in_w, in_h, in_w, 0, 0, mode};
    return "";
  }
  for (int64_t v : {pool_h, pool_w, stride_h, stride_w})
    if (v < 1 || v > kMaxSide) return "pool sizes and strides must be in [1, 2^20]";
  if (padding != kPadValid && padding != kPadSame) return "padding must be 'valid' or 'same'";
  *g = PoolGeometry{in_h, in_w, channels, 0, 0, pool_h, pool_w, stride_h, stride_w, 0, 0, mode};
  if (!window_output(in_h, pool_h, stride_h, 1, padding == kPadSame, &g->out_h, &g->pad_top) ||
      !window_output(in_w, pool_w, stride_w, 1, padding == kPadSame, &g->out_w, &g->pad_left))
    return "the pool window is larger than the input";
  return "";
}

}  // namespace math
}  // namespace gradsmith
