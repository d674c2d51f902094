// 2-D convolution on the GPU (NHWC, kernel (kh, kw, cin, cout) as Keras), forward and backward: the CPU's
// math (cpu/conv.cpp) with the GPU's GEMM. Rows are the batch's output pixels (P = out_h * out_w an image,
// rows = batch * P), K = kh * kw * cin the patch, F = cout:
//
//   forward          z = col(x) W + b; y = f(z)
//                    im2col of a chunk of rows at a time (chunk_rows: about 8M floats of scratch, so never
//                    the whole batch's: 190 MB for 32 images 74x74x32 with 3x3 taps) into the plan's scratch,
//                    then the GEMM of gemm.cu with the bias and f in its epilogue (dense_forward); a 1x1
//                    convolution with stride 1 and no padding is that GEMM over x itself
//   backward         dz = dy f'(z), and db = sum of dz: per column, fixed chunks of 256 rows summed in row
//                    order, then the chunks in order
//   backward-filter  dW = col(x)^T dz: filter_grad_kernel, an implicit GEMM (it reads x where im2col would
//                    have put it) split over fixed groups of rows, each group's 64 x 64 tile of dW summed
//                    row by row in order, then the groups in order. dW is only K x F (3 x 1 GEMM tiles of
//                    128 for the seed model): a plain GEMM over the rows would run on 3 SMs.
//   backward-data    dx = col2im(dz W^T): dcol = dz W^T by the GEMM, a chunk of rows at a time, then a gather
//                    per input element of the dcol entries that came from it (no atomics), output pixels in
//                    ascending order; an image cut by a chunk boundary adds the later chunk's share to the
//                    earlier one's
//
// im2col and the col2im gather move 4 channels a thread (float4) when the channels are a multiple of 4 and the
// buffers aligned. Every chunk and group is chosen from the sizes alone and every sum runs in a fixed order:
// the same bits on every run.
#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda/kernels.h"
#include "cuda/launch.h"
#include "cuda/layer_kernels.h"
#include "math/elementwise.h"

namespace gradsmith {
namespace cuda {
namespace {

using math::ConvGeometry;

#if defined(GRADSMITH_CUDA_EMULATOR)
// The emulated build (tests/cuda on the CPU, tiny images) cuts the batch into small chunks and groups, so the
// tests cross chunk boundaries inside an image and sum dW over several groups. dx and y do not depend on the
// chunks (each element is summed in the same order either way); dW's groups change its rounding only.
constexpr i64 kChunkFloats = (i64)1 << 12;
constexpr i64 kGroupRows = 64;
#else
constexpr i64 kChunkFloats = (i64)1 << 23;  // im2col rows per chunk: about this many floats (32 MB)
constexpr i64 kGroupRows = 1024;            // rows per group of dW's partial sums, at least
#endif
constexpr i64 kSumRows = 256;               // rows per partial column sum of db
constexpr i64 kPartialFloats = (i64)1 << 22;  // at most this many floats of dW partial sums (16 MB) ...
constexpr i64 kMaxGroups = 65535;             // ... and groups (gridDim.z)

// Filter-gradient tiles: 64 patch taps x 64 filters a block of 256 threads (4 x 4 each), 16 rows a step.
constexpr int kTK = 64, kTF = 64, kBR = 16, kFilterThreads = 256;

i64 round_up(i64 n) { return (n + 63) / 64 * 64; }  // sub-buffers of the scratch start 256-byte aligned

// Rows of im2col a chunk: kChunkFloats / K, a multiple of 128 (the GEMM's row tile), at least 128.
i64 chunk_rows(const ConvGeometry& g, i64 batch) {
  const i64 rows = batch * g.out_pixels();
  i64 r = kChunkFloats / g.patch() / 128 * 128;
  if (r < 128) r = 128;
  return r < rows ? r : rows;
}

i64 sum_chunks(i64 rows) { return (rows + kSumRows - 1) / kSumRows; }

i64 filter_groups(const ConvGeometry& g, i64 batch) {
  const i64 rows = batch * g.out_pixels(), kf = g.patch() * g.out_c;
  i64 groups = (rows + kGroupRows - 1) / kGroupRows;
  const i64 fit = kPartialFloats / kf;
  if (groups > fit) groups = fit;
  if (groups > kMaxGroups) groups = kMaxGroups;
  return groups < 1 ? 1 : groups;
}

// Where backward keeps what it needs in the scratch (floats from its start).
struct BackwardScratch {
  i64 dz, filter_parts, bias_parts, dcol, total;
};
BackwardScratch backward_scratch(const ConvGeometry& g, i64 batch) {
  const i64 rows = batch * g.out_pixels(), K = g.patch(), F = g.out_c, groups = filter_groups(g, batch);
  BackwardScratch s;
  s.dz = 0;
  s.filter_parts = s.dz + round_up(rows * F);
  s.bias_parts = s.filter_parts + (groups > 1 ? round_up(groups * K * F) : 0);
  s.dcol = s.bias_parts + round_up(sum_chunks(rows) * F);
  s.total = s.dcol + (g.pointwise() ? 0 : chunk_rows(g, batch) * K);
  return s;
}

// V consecutive floats, moved as one float4 when V = 4 (16-byte aligned: the callers check).
template <int V>
struct Lanes {
  float v[V];
};
template <int V>
__device__ __forceinline__ Lanes<V> load_lanes(const float* p) {
  Lanes<V> l;
  if constexpr (V == 4) {
    const float4 f = *reinterpret_cast<const float4*>(p);
    l.v[0] = f.x, l.v[1] = f.y, l.v[2] = f.z, l.v[3] = f.w;
  } else {
    for (int j = 0; j < V; ++j) l.v[j] = p[j];
  }
  return l;
}
template <int V>
__device__ __forceinline__ void store_lanes(float* p, const Lanes<V>& l) {
  if constexpr (V == 4) {
    *reinterpret_cast<float4*>(p) = make_float4(l.v[0], l.v[1], l.v[2], l.v[3]);
  } else {
    for (int j = 0; j < V; ++j) p[j] = l.v[j];
  }
}

// Whether the kernels below can move 4 channels at a time: channels a multiple of 4 and 16-byte aligned
// buffers (then every run of 4 channels of one tap is aligned in x, col, dcol and dx alike).
bool four_channels(const ConvGeometry& g, const float* a, const float* b) {
  return g.in_c % 4 == 0 && (uintptr_t)a % 16 == 0 && (uintptr_t)b % 16 == 0;
}

// col (n_rows, K) = the patches of rows [r0, r0 + n_rows) of the batch; taps outside the image are 0. Each
// thread moves V channels of one tap (V divides the channels).
template <int V>
__global__ void im2col_kernel(ConvGeometry g, const float* x, i64 r0, i64 n_rows, float* col) {
  const i64 K = g.patch(), KV = K / V, P = g.out_pixels(), C = g.in_c, total = n_rows * KV;
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < total; e += (i64)gridDim.x * blockDim.x) {
    const i64 r = e / KV, k = (e - r * KV) * V, p = r0 + r;
    const i64 n = p / P, pixel = p - n * P, oy = pixel / g.out_w, ox = pixel - oy * g.out_w;
    const i64 tap = k / C, c = k - tap * C, ky = tap / g.k_w, kx = tap - ky * g.k_w;
    const i64 iy = g.input_row(oy, ky), ix = g.input_col(ox, kx);
    Lanes<V> v;
    if (iy >= 0 && iy < g.in_h && ix >= 0 && ix < g.in_w) {
      v = load_lanes<V>(x + ((n * g.in_h + iy) * g.in_w + ix) * C + c);
    } else {
      for (int j = 0; j < V; ++j) v.v[j] = 0.f;
    }
    store_lanes<V>(col + r * K + k, v);
  }
}

// The output index o with o * stride = t along one axis, if there is one in [0, out) (stride 1, the common
// case, with no division: 64-bit divisions are long on the GPU).
__device__ __forceinline__ bool output_at(i64 t, i64 stride, i64 out, i64* o) {
  if (t < 0) return false;
  if (stride != 1) {
    if (t % stride != 0) return false;
    t /= stride;
  }
  *o = t;
  return t < out;
}

// dx for the input elements of images [n0, n0 + total / image) from dcol, the rows [r0, r1) of dz W^T: each
// element sums the dcol entries of the output pixels in [r0, r1) that read it, in ascending pixel order, onto
// 0 when its image starts in this chunk, else onto what the chunks before wrote. Each thread sums V channels
// of one input pixel (V divides the channels), each in the same order as one channel alone.
template <int V>
__global__ void col2im_kernel(ConvGeometry g, const float* dcol, i64 r0, i64 r1, i64 n0, float* dx, i64 total) {
  const i64 K = g.patch(), P = g.out_pixels(), C = g.in_c, image = g.in_pixels() * C;
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < total / V; e += (i64)gridDim.x * blockDim.x) {
    const i64 at = n0 * image + e * V, n = at / image, rest = at - n * image;
    const i64 pixel = rest / C, c = rest - pixel * C, iy = pixel / g.in_w, ix = pixel - iy * g.in_w;
    Lanes<V> sum;
    if (n * P >= r0) {
      for (int j = 0; j < V; ++j) sum.v[j] = 0.f;
    } else {
      sum = load_lanes<V>(dx + at);
    }
    for (i64 ky = g.k_h - 1; ky >= 0; --ky) {  // ky down: oy up
      i64 oy;
      if (!output_at(iy + g.pad_top - ky * g.dil_h, g.stride_h, g.out_h, &oy)) continue;
      for (i64 kx = g.k_w - 1; kx >= 0; --kx) {
        i64 ox;
        if (!output_at(ix + g.pad_left - kx * g.dil_w, g.stride_w, g.out_w, &ox)) continue;
        const i64 p = n * P + oy * g.out_w + ox;
        if (p < r0 || p >= r1) continue;
        const Lanes<V> d = load_lanes<V>(dcol + (p - r0) * K + (ky * g.k_w + kx) * C + c);
        for (int j = 0; j < V; ++j) sum.v[j] += d.v[j];
      }
    }
    store_lanes<V>(dx + at, sum);
  }
}

// One thread per (chunk of kSumRows rows, column): dz = dy f'(z) down the chunk (written when dz is not null)
// and its sum in row order into part[chunk * cols + column] (when part is not null).
__global__ void dz_part_kernel(ActParams act, const float* dy, const float* z, float* dz, float* part, i64 rows,
                               i64 cols) {
  const i64 total = (rows + kSumRows - 1) / kSumRows * cols;
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < total; e += (i64)gridDim.x * blockDim.x) {
    const i64 chunk = e / cols, j = e - chunk * cols;
    const i64 r1 = (chunk + 1) * kSumRows < rows ? (chunk + 1) * kSumRows : rows;
    float sum = 0.f;
    for (i64 r = chunk * kSumRows; r < r1; ++r) {
      const i64 k = r * cols + j;
      const float v = act.kind == kLinear ? dy[k] : dy[k] * math::act_derivative(act.kind, act.param, z[k]);
      if (dz) dz[k] = v;
      sum += v;
    }
    if (part) part[e] = sum;
  }
}

// out[e] = parts[e] + parts[width + e] + ... over n_parts, in order (0 for none).
__global__ void sum_parts_kernel(const float* parts, i64 n_parts, i64 width, float* out) {
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < width; e += (i64)gridDim.x * blockDim.x) {
    float sum = 0.f;
    for (i64 j = 0; j < n_parts; ++j) sum += parts[j * width + e];
    out[e] = sum;
  }
}

// dW (K, F) tile (blockIdx.x: 64 taps, blockIdx.y: 64 filters) summed over the rows of group blockIdx.z,
// [group * group_rows, + group_rows) of the batch: out[k, f] = sum_p col(x)[p, k] dz[p, f], rows in order,
// into out + group * K * F. col(x) is read from x where im2col would have put it.
__global__ void __launch_bounds__(kFilterThreads)
    filter_grad_kernel(ConvGeometry g, const float* __restrict__ x, const float* __restrict__ dz, i64 rows,
                       i64 group_rows, float* __restrict__ out) {
  __shared__ float As[kBR][kTK];
  __shared__ float Bs[kBR][kTF];
  __shared__ i64 row_base[kBR];  // the row's image offset in x, -1 past the group's end
  __shared__ i64 row_y[kBR], row_x[kBR];  // the input pixel of tap (0, 0)
  const i64 K = g.patch(), F = g.out_c, P = g.out_pixels(), C = g.in_c;
  const i64 k0 = (i64)blockIdx.x * kTK, f0 = (i64)blockIdx.y * kTF;
  const i64 p_begin = (i64)blockIdx.z * group_rows;
  const i64 p_end = p_begin + group_rows < rows ? p_begin + group_rows : rows;
  const int tid = threadIdx.x;
  // What this thread stages: tap column k0 + lane of A, filter f0 + lane of B, rows tid / 64 + 4q.
  const int lane = tid % kTK, row0 = tid / kTK;
  const i64 k = k0 + lane, f = f0 + lane;
  const bool k_ok = k < K, f_ok = f < F;
  const i64 tap = k_ok ? k / C : 0, c = k_ok ? k - tap * C : 0, ky = tap / g.k_w, kx = tap - ky * g.k_w;
  const i64 dy_tap = ky * g.dil_h, dx_tap = kx * g.dil_w;
  // What this thread sums: taps k0 + tk + 16 i, filters f0 + tf + 16 j.
  const int tk = tid / 16, tf = tid % 16;
  float acc[4][4] = {};
  for (i64 p0 = p_begin; p0 < p_end; p0 += kBR) {
    if (tid < kBR) {
      const i64 p = p0 + tid;
      if (p < p_end) {
        const i64 n = p / P, pixel = p - n * P, oy = pixel / g.out_w, ox = pixel - oy * g.out_w;
        row_base[tid] = n * g.in_pixels() * C;
        row_y[tid] = g.input_row(oy, 0);
        row_x[tid] = g.input_col(ox, 0);
      } else {
        row_base[tid] = -1;
      }
    }
    __syncthreads();
#pragma unroll
    for (int q = 0; q < kBR / 4; ++q) {
      const int r = row0 + 4 * q;
      const i64 base = row_base[r], iy = row_y[r] + dy_tap, ix = row_x[r] + dx_tap;
      As[r][lane] = k_ok && base >= 0 && iy >= 0 && iy < g.in_h && ix >= 0 && ix < g.in_w
                        ? x[base + (iy * g.in_w + ix) * C + c]
                        : 0.f;
      Bs[r][lane] = f_ok && base >= 0 ? dz[(p0 + r) * F + f] : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < kBR; ++r) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[r][tk + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = Bs[r][tf + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
  float* o = out + (i64)blockIdx.z * K * F;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const i64 kk = k0 + tk + 16 * i;
    if (kk >= K) break;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const i64 ff = f0 + tf + 16 * j;
      if (ff < F) o[kk * F + ff] = acc[i][j];
    }
  }
}

}  // namespace

i64 conv_scratch(const ConvGeometry& g, i64 batch) {
  // Forward needs the im2col chunk only, which backward's layout holds too.
  return backward_scratch(g, batch).total;
}

void conv_forward(const ConvGeometry& g, const float* x, const float* W, const float* b, ActParams act, float* y,
                  float* z, float* scratch, i64 batch) {
  const i64 rows = batch * g.out_pixels(), K = g.patch(), F = g.out_c;
  if (rows <= 0) return;
  // Softmax (over the channels) needs whole rows, which the GEMM's tile epilogue does not see: after it.
  const bool softmax = act.kind == kSoftmax;
  const ActParams ep_act = softmax ? ActParams{kLinear, 0.f} : act;
  if (g.pointwise()) {
    dense_forward(x, W, b, ep_act, y, z, rows, K, F);
  } else {
    const i64 chunk = chunk_rows(g, batch);
    float* col = scratch + backward_scratch(g, batch).dcol;
    const bool vec = four_channels(g, x, col);
    for (i64 r0 = 0; r0 < rows; r0 += chunk) {
      const i64 n = rows - r0 < chunk ? rows - r0 : chunk;
      if (vec) GS_LAUNCH(im2col_kernel<4>, launch_blocks(n * K / 4), kLaunchThreads, 0, 0)(g, x, r0, n, col);
      else GS_LAUNCH(im2col_kernel<1>, launch_blocks(n * K), kLaunchThreads, 0, 0)(g, x, r0, n, col);
      check_launch("conv im2col kernel");
      dense_forward(col, W, b, ep_act, y + r0 * F, z ? z + r0 * F : nullptr, n, K, F);
    }
  }
  if (softmax) softmax_forward(y, y, rows, F);
}

void conv_backward(const ConvGeometry& g, const float* dy, const float* x, const float* W, const float* z,
                   ActParams act, float* scratch, float* dx, float* dW, float* db, i64 batch) {
  const i64 P = g.out_pixels(), rows = batch * P, K = g.patch(), F = g.out_c;
  const BackwardScratch s = backward_scratch(g, batch);
  float* bias_parts = scratch + s.bias_parts;
  const i64 chunks = sum_chunks(rows);

  // dz = dy f'(z) and the chunks' column sums for db.
  const float* dz = dy;
  if (act.kind == kSoftmax) {
    softmax_backward(dy, z, scratch + s.dz, rows, F);
    dz = scratch + s.dz;
    if (db && chunks > 0) {
      GS_LAUNCH(dz_part_kernel, launch_blocks(chunks * F), kLaunchThreads, 0, 0)(
          ActParams{kLinear, 0.f}, dz, nullptr, nullptr, bias_parts, rows, F);
      check_launch("conv bias gradient kernel");
    }
  } else if (chunks > 0 && (db || act.kind != kLinear)) {
    float* dz_out = act.kind == kLinear ? nullptr : scratch + s.dz;  // linear: dz is dy itself
    GS_LAUNCH(dz_part_kernel, launch_blocks(chunks * F), kLaunchThreads, 0, 0)(
        act, dy, z, dz_out, db ? bias_parts : nullptr, rows, F);
    check_launch("conv dz kernel");
    if (dz_out) dz = dz_out;
  }
  if (db) {
    GS_LAUNCH(sum_parts_kernel, launch_blocks(F), kLaunchThreads, 0, 0)(bias_parts, chunks, F, db);
    check_launch("conv bias sum kernel");
  }

  // dW: the groups' partial sums (into dW itself when there is one group), then the groups in order.
  const i64 groups = filter_groups(g, batch), group_rows = (rows + groups - 1) / groups;
  float* filter_out = groups > 1 ? scratch + s.filter_parts : dW;
  const dim3 grid((unsigned)((K + kTK - 1) / kTK), (unsigned)((F + kTF - 1) / kTF), (unsigned)groups);
  GS_LAUNCH(filter_grad_kernel, grid, kFilterThreads, 0, 0)(g, x, dz, rows, group_rows, filter_out);
  check_launch("conv filter gradient kernel");
  if (groups > 1) {
    GS_LAUNCH(sum_parts_kernel, launch_blocks(K * F), kLaunchThreads, 0, 0)(filter_out, groups, K * F, dW);
    check_launch("conv filter sum kernel");
  }

  // dx = col2im(dz W^T), a chunk of rows at a time.
  if (!dx || rows <= 0) return;
  if (g.pointwise()) {
    gemm(false, true, rows, K, F, 1.f, dz, F, W, F, 0.f, dx, K);
    return;
  }
  const i64 chunk = chunk_rows(g, batch), image = g.in_pixels() * g.in_c;
  float* dcol = scratch + s.dcol;
  const bool vec = four_channels(g, dcol, dx);
  for (i64 r0 = 0; r0 < rows; r0 += chunk) {
    const i64 n = rows - r0 < chunk ? rows - r0 : chunk;
    gemm(false, true, n, K, F, 1.f, dz + r0 * F, F, W, F, 0.f, dcol, K);
    const i64 n0 = r0 / P, n1 = (r0 + n - 1) / P + 1;  // the images these rows belong to
    const i64 total = (n1 - n0) * image;
    if (vec)
      GS_LAUNCH(col2im_kernel<4>, launch_blocks(total / 4), kLaunchThreads, 0, 0)(g, dcol, r0, r0 + n, n0, dx, total);
    else
      GS_LAUNCH(col2im_kernel<1>, launch_blocks(total), kLaunchThreads, 0, 0)(g, dcol, r0, r0 + n, n0, dx, total);
    check_launch("conv col2im kernel");
  }
}

}  // namespace cuda
}  // namespace gradsmith
