// The portable loops of the GEMM C = alpha op(A) op(B) + beta C, by shape:
//
//   N = 1 (gemm_one_column)  dot products or axpys (a tile would use 1 lane in 16)
//   few columns (gemm_narrow) C^T = op(B)^T op(A)^T, so the long side is the lanes
//   small (gemm_unpacked)    register tiles read A and B in place: no packing
//   large (gemm_packed)      BLIS's loops around the micro-kernel, A and B packed
//                            into panels that stay in L2 / L1 while they are used
//   many threads             C cut into parts along its longer side, each part a
//                            whole packed product on one thread (its own packing)
//
// Only the micro-kernel, the tile and the blocking sizes differ per ISA
// (kernel_table.h). Every element of C is summed over K in the same order
// whatever the thread count and split, so results do not depend on them.
#include "cpu/gemm.h"

#include <stdint.h>

#include <vector>

#include "cpu/dispatch.h"
#include "cpu/profiler.h"
#include "cpu/scratch.h"
#include "cpu/thread_pool.h"

namespace gradsmith {
namespace cpu {
namespace {

// Below this many flops a product runs on the calling thread: waking the pool
// costs more than it saves.
constexpr double kParallelMinFlops = 2.0 * 96 * 96 * 96;
// Up to this many multiply-adds, with op(B) small enough to stay in L2
// (K * N floats), a product skips packing (gemm_unpacked): packing pays only
// when each packed element is reused many times, which the products of small
// dense layers (M = batch = 32..256) do not do.
constexpr double kSmallGemmMacs = 1 << 22;
constexpr double kSmallGemmB = 1 << 18;
constexpr i64 kSmallGemmRowK = 512;
// Narrow products (see gemm_narrow) take the transposed route from this size: below it the extra pass
// costs more than the idle lanes.
constexpr double kNarrowMinMacs = 1 << 14;

i64 min_i(i64 a, i64 b) { return a < b ? a : b; }
i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }

// Packing buffers of the calling thread, kept between calls (no allocation in
// a steady training loop).
struct Workspace {
  std::vector<float> b;  // a KC x NC block of op(B), in NR-wide panels
  std::vector<float> a;  // an MC x KC block of op(A), in MR-tall panels
};

float* aligned(std::vector<float>& v, size_t n) {
  if (v.size() < n + 16) v.resize(n + 16);
  uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
  return reinterpret_cast<float*>((p + 63) & ~uintptr_t(63));
}

// op(A)[i0:i0+mc, p0:p0+kc] into MR-tall panels: element (i, p) of a panel at
// p * MR + i; rows past mc are zero.
void pack_a(bool ta, const float* A, i64 lda, i64 i0, i64 p0, i64 mc, i64 kc, int MR, float* dst) {
  for (i64 ir = 0; ir < mc; ir += MR, dst += MR * kc) {
    const i64 mr = min_i(MR, mc - ir);
    if (ta) {  // A is (K, M): rows of op(A) are columns of A, contiguous in i
      for (i64 p = 0; p < kc; ++p) {
        const float* src = A + (p0 + p) * lda + i0 + ir;
        float* d = dst + p * MR;
        for (i64 i = 0; i < mr; ++i) d[i] = src[i];
        for (i64 i = mr; i < MR; ++i) d[i] = 0.f;
      }
    } else {  // A is (M, K): the panel is the transpose of an mr x kc block of A
      kernels().transpose(mr, kc, A + (i0 + ir) * lda + p0, lda, dst, MR);
      for (i64 i = mr; i < MR; ++i)
        for (i64 p = 0; p < kc; ++p) dst[p * MR + i] = 0.f;
    }
  }
}

// op(B)[p0:p0+kc, j0 + panel*NR ...] for panels [s0, s1): element (p, j) of a
// panel at p * NR + j; columns past nc are zero.
void pack_b(bool tb, const float* B, i64 ldb, i64 p0, i64 j0, i64 nc, i64 kc, int NR, i64 s0, i64 s1,
            float* dst) {
  for (i64 s = s0; s < s1; ++s) {
    float* d = dst + s * NR * kc;
    const i64 jr = s * NR, nr = min_i(NR, nc - jr);
    if (tb) {  // B is (N, K): the panel is the transpose of an nr x kc block of B
      kernels().transpose(nr, kc, B + (j0 + jr) * ldb + p0, ldb, d, NR);
      for (i64 j = nr; j < NR; ++j)
        for (i64 p = 0; p < kc; ++p) d[p * NR + j] = 0.f;
    } else {  // B is (K, N): contiguous in j
      for (i64 p = 0; p < kc; ++p) {
        const float* src = B + (p0 + p) * ldb + j0 + jr;
        for (i64 j = 0; j < nr; ++j) d[p * NR + j] = src[j];
        for (i64 j = nr; j < NR; ++j) d[p * NR + j] = 0.f;
      }
    }
  }
}

Epilogue epilogue_at(const Epilogue& ep, i64 i, i64 j) {
  Epilogue e = ep;
  if (e.bias) e.bias += j;
  if (e.preact) e.preact += i * e.ldz + j;
  return e;
}

// C = alpha op(A) op(B) + beta C tile by tile with gemm_tile reading A and B in
// place. op(B) = B^T is first transposed into (K, N) rows (a thread-local
// buffer, kept), so every tile loads rows of B contiguously. Row tiles are
// split across threads only when the product is worth waking them for.
void gemm_unpacked(bool ta, bool tb, i64 M, i64 N, i64 K, float alpha, const float* A, i64 lda, const float* B,
                   i64 ldb, float beta, float* C, i64 ldc, const Epilogue* ep) {
  const KernelTable& kt = kernels();
  const int MR = kt.gemm.mr, NR = kt.gemm.nr;
  const float* b = B;
  i64 ldb_rows = ldb;
  if (tb) {
    static thread_local std::vector<float> bt;
    if ((i64)bt.size() < K * N) bt.resize(K * N);
    kt.transpose(N, K, B, ldb, bt.data(), N);  // B (N, K) -> bt (K, N)
    b = bt.data();
    ldb_rows = N;
  }
  const i64 rs_a = ta ? 1 : lda, cs_a = ta ? lda : 1;
  const i64 row_tiles = ceil_div(M, MR);
  auto rows = [&](i64 t0, i64 t1) {
    for (i64 j = 0; j < N; j += NR) {
      const i64 nr = min_i(NR, N - j);
      for (i64 t = t0; t < t1; ++t) {
        const i64 i = t * MR, mr = min_i(MR, M - i);
        float* c = C + i * ldc + j;
        kt.gemm_tile(mr, nr, K, A + i * rs_a, rs_a, cs_a, b + j, ldb_rows, c, ldc, alpha, beta);
        if (ep) kt.gemm_epilogue(c, ldc, mr, nr, epilogue_at(*ep, i, j));
      }
    }
  };
  const i64 threads = 2.0 * M * N * K < kParallelMinFlops ? 1 : min_i(num_threads(), row_tiles);
  if (threads <= 1) {
    rows(0, row_tiles);
    return;
  }
  parallel_for(threads, [&](int64_t t, int) { rows(row_tiles * t / threads, row_tiles * (t + 1) / threads); },
               (int)threads);
}

// N = 1: y = op(A) x through the gemv loop (a tile would use one lane in 16), then
// C = alpha y + beta C and the epilogue. x is op(B)'s one column, gathered when strided.
void gemm_one_column(bool ta, bool tb, i64 M, i64 K, float alpha, const float* A, i64 lda, const float* B, i64 ldb,
                     float beta, float* C, i64 ldc, const Epilogue* ep) {
  const KernelTable& kt = kernels();
  float* y = scratch<float, kScratchGemvOut>(M);
  const float* x = B;  // op(B)(p, 0) = tb ? B[p] : B[p * ldb]
  if (!tb && ldb != 1) {
    float* xs = scratch<float, kScratchGemvIn>(K);
    for (i64 p = 0; p < K; ++p) xs[p] = B[p * ldb];
    x = xs;
  }
  kt.gemv(ta, K, A, lda, x, y, 0, M);
  for (i64 i = 0; i < M; ++i) C[i * ldc] = beta == 0.f ? alpha * y[i] : alpha * y[i] + beta * C[i * ldc];
  if (ep) kt.gemm_epilogue(C, ldc, M, 1, *ep);
}

// One thread's blocked product (BLIS's loops around the micro-kernel):
//   for jc in N step NC, pc in K step KC: pack op(B)[pc:+KC, jc:+NC] in NR-wide panels;
//     for ic in M step MC: pack op(A)[ic:+MC, pc:+KC] in MR-tall panels;
//       for each NR panel, each MR panel: micro-kernel -> MR x NR tile of C,
//       and on the last pc the epilogue on that tile while it is in L1.
void gemm_packed(bool ta, bool tb, i64 M, i64 N, i64 K, float alpha, const float* A, i64 lda, const float* B,
                 i64 ldb, float beta, float* C, i64 ldc, const Epilogue* ep) {
  const KernelTable& kt = kernels();
  const GemmBlocking bk = kt.gemm;
  const int MR = bk.mr, NR = bk.nr;
  static thread_local Workspace ws;  // kept between calls: no allocation in a steady loop
  // K in equal blocks of at most KC: 784 = 4 x 196, not 3 x 256 + 16, whose last pass over C would
  // load and store every tile of C for 16 multiply-adds.
  const i64 kc_max = ceil_div(K, ceil_div(K, bk.kc)), nc_max = min_i(bk.nc, N), mc_max = min_i(bk.mc, M);
  float* bpack = aligned(ws.b, (size_t)kc_max * ceil_div(nc_max, NR) * NR);
  float* apack = aligned(ws.a, (size_t)kc_max * ceil_div(mc_max, MR) * MR);
  alignas(64) float tile[16 * 64];
  for (i64 jc = 0; jc < N; jc += bk.nc) {
    const i64 nc = min_i(bk.nc, N - jc);
    const i64 n_panels = ceil_div(nc, NR);
    for (i64 pc = 0; pc < K; pc += kc_max) {
      const i64 kc = min_i(kc_max, K - pc);
      const float beta_k = pc == 0 ? beta : 1.f;  // later K blocks accumulate
      const bool last_k = pc + kc >= K;
      pack_b(tb, B, ldb, pc, jc, nc, kc, NR, 0, n_panels, bpack);
      for (i64 i0 = 0; i0 < M; i0 += bk.mc) {
        const i64 mc = min_i(bk.mc, M - i0);
        pack_a(ta, A, lda, i0, pc, mc, kc, MR, apack);
        for (i64 ir = 0; ir < mc; ir += MR) {
          const i64 mr = min_i(MR, mc - ir);
          const float* a = apack + ir * kc;
          for (i64 s = 0; s < n_panels; ++s) {
            const i64 j = s * NR, nr = min_i(NR, nc - j);
            const float* bp = bpack + s * NR * kc;
            float* c = C + (i0 + ir) * ldc + jc + j;
            if (mr == MR && nr == NR) {
              kt.gemm_ukr(kc, a, bp, c, ldc, alpha, beta_k);
            } else {  // edge tile: compute the full tile aside, write the part that exists
              kt.gemm_ukr(kc, a, bp, tile, NR, 1.f, 0.f);
              for (i64 ii = 0; ii < mr; ++ii)
                for (i64 jj = 0; jj < nr; ++jj) {
                  float* cij = c + ii * ldc + jj;
                  const float v = alpha * tile[ii * NR + jj];
                  *cij = beta_k == 0.f ? v : v + beta_k * *cij;
                }
            }
            if (last_k && ep) kt.gemm_epilogue(c, ldc, mr, nr, epilogue_at(*ep, i0 + ir, jc + j));
          }
        }
      }
    }
  }
}

}  // namespace

namespace {

// C (M x N, N small) through C^T (N x M) = op(B)^T op(A)^T, a product with M on the vector lanes, into
// per-thread scratch; then C = alpha (C^T)^T + beta C and the epilogue.
void gemm_narrow(bool ta, bool tb, i64 M, i64 N, i64 K, float alpha, const float* A, i64 lda, const float* B,
                 i64 ldb, float beta, float* C, i64 ldc, const Epilogue* ep) {
  float* ct = scratch<float, kScratchNarrowC>((size_t)(M * N));
  gemm(!tb, !ta, N, M, K, 1.f, B, ldb, A, lda, 0.f, ct, M, nullptr);
  for (i64 i = 0; i < M; ++i)
    for (i64 j = 0; j < N; ++j) {
      const float v = alpha * ct[j * M + i];
      C[i * ldc + j] = beta == 0.f ? v : v + beta * C[i * ldc + j];
    }
  if (ep) kernels().gemm_epilogue(C, ldc, M, N, *ep);
}

}  // namespace

void gemm(bool ta, bool tb, i64 M, i64 N, i64 K, float alpha, const float* A, i64 lda, const float* B, i64 ldb,
          float beta, float* C, i64 ldc, const Epilogue* ep) {
  // FLOPs: 2 per multiply-add of op(A) @ op(B); bytes: op(A) and op(B) read, C written (and read when beta != 0).
  GS_PROFILE_SCOPE("gemm", 2.0 * M * N * K, 4.0 * (M * K + K * N + (beta != 0.f ? 2 : 1) * M * N), M, N, K);
  if (M <= 0 || N <= 0) return;
  const KernelTable& kt = kernels();
  if (K <= 0) {  // op(A) @ op(B) is all zeros: C = beta * C
    for (i64 i = 0; i < M; ++i)
      for (i64 j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
    if (ep) kt.gemm_epilogue(C, ldc, M, N, *ep);
    return;
  }
  if (N == 1 && (double)M * K <= kSmallGemmMacs) {
    gemm_one_column(ta, tb, M, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
    return;
  }
  // A few columns (a 10-class output layer, its weight gradient): a register tile would use N of its NR
  // lanes. Compute C^T = op(B)^T op(A)^T instead, whose long side is now the lanes, and transpose back.
  if (2 * N < kt.gemm.nr && M >= 2 * N && (double)M * N * K >= kNarrowMinMacs) {
    gemm_narrow(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
    return;
  }
  // With A in place, a tile broadcasts from MR rows of A lda apart; for long rows (lda a multiple of 4 KiB
  // puts all of them in one L1 set) that thrashes, and packing A is cheap next to the product.
  if ((double)M * N * K <= kSmallGemmMacs && (double)K * N <= kSmallGemmB && (ta || K <= kSmallGemmRowK)) {
    gemm_unpacked(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
    return;
  }
  const GemmBlocking bk = kt.gemm;
  const int threads = 2.0 * M * N * K < kParallelMinFlops ? 1 : num_threads();
  if (threads == 1) {
    gemm_packed(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
    return;
  }
  // Split C into parts, each a whole blocked product on one thread with its own packing (as OpenBLAS
  // does): one parallel region per call and every packed panel in the L2 of the core that uses it.
  // Cut the longer side of C, in whole tiles, into one part per thread: every part packs all of the
  // other operand, so more parts would pack it more often.
  const bool split_n = N >= M;
  const i64 unit = split_n ? bk.nr : bk.mr, units = ceil_div(split_n ? N : M, unit);
  const i64 parts = min_i(units, (i64)threads);
  parallel_for(
      parts,
      [&](int64_t p, int) {
        const i64 lo = units * p / parts * unit, hi = min_i(units * (p + 1) / parts * unit, split_n ? N : M);
        if (hi <= lo) return;
        if (split_n) {
          const Epilogue e = ep ? epilogue_at(*ep, 0, lo) : Epilogue();
          gemm_packed(ta, tb, M, hi - lo, K, alpha, A, lda, tb ? B + lo * ldb : B + lo, ldb, beta, C + lo, ldc,
                      ep ? &e : nullptr);
        } else {
          const Epilogue e = ep ? epilogue_at(*ep, lo, 0) : Epilogue();
          gemm_packed(ta, tb, hi - lo, N, K, alpha, ta ? A + lo : A + lo * lda, lda, B, ldb, beta, C + lo * ldc, ldc,
                      ep ? &e : nullptr);
        }
      },
      threads);
}

}  // namespace cpu
}  // namespace gradsmith
