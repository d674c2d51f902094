// The portable loops of the int8 GEMM (qgemm.h). Only the micro-kernel, the row quantizer and the
// epilogue differ per ISA (qkernel_table.h); everything here is shared.
//
//   1. A into MR-tall panels (in parallel over panels): int8 rows copied, or float32 rows quantized
//      first (one scale per row), shifted by 128 where the path wants unsigned A.
//   2. C in blocks of (MC rows x NC columns), one task each on the thread pool: for each MR panel of
//      the block's rows (in L1 while it is used), for each NR panel of its columns (the block of B in
//      L2): the micro-kernel sums all of K into an int32 register tile, and the epilogue writes that
//      tile of C at once (int32 as is, or dequantized + bias + activation as float32).
// Every element of C is summed over the whole of K inside one micro-kernel call, so results do not
// depend on the thread count or the blocking.
#include "cpu/qgemm.h"

#include <string.h>

#include <vector>

#include "cpu/dispatch.h"
#include "cpu/profiler.h"
#include "cpu/thread_pool.h"

namespace gradsmith {
namespace cpu {
namespace {

constexpr i64 kMcRows = 96;             // rows of a task: 8 panels of 12
constexpr i64 kNcBytes = 256 * 1024;    // a task's block of packed B stays in L2
// Below these sizes a product (multiply-adds) or the quantization of A (elements) runs on the calling
// thread: waking the pool costs more than the few microseconds it would save (a 10-class output layer).
constexpr double kParallelMinMacs = 1 << 21;
constexpr double kParallelMinQuantize = 1 << 17;

i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }
i64 min_i(i64 a, i64 b) { return a < b ? a : b; }
i64 max_i(i64 a, i64 b) { return a > b ? a : b; }

bool cpu_has_vnni_impl() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

// Packed A for one call, kept by the calling thread between calls (no allocation in a steady loop).
struct QWorkspace {
  std::vector<uint8_t> a;
  std::vector<float> xs;
};

uint8_t* aligned64(std::vector<uint8_t>& v, size_t n) {
  if (v.size() < n + 64) v.resize(n + 64);
  const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
  return reinterpret_cast<uint8_t*>((p + 63) & ~uintptr_t(63));
}

// One row of int8 values q (k of them) into row r of the MR-tall panel at `panel`, 4 bytes per group,
// with the unsigned shift when the path wants it; the padding up to kg groups is zero.
void put_row(const int8_t* q, i64 k, i64 kg, int MR, int r, bool shift, uint8_t* panel) {
  const uint32_t flip = shift ? 0x80808080u : 0u;
  const i64 whole = k / 4;
  for (i64 g = 0; g < whole; ++g) {
    uint32_t w;
    memcpy(&w, q + 4 * g, 4);
    w ^= flip;
    memcpy(panel + (g * MR + r) * 4, &w, 4);
  }
  for (i64 g = whole; g < kg; ++g) {
    uint8_t* d = panel + (g * MR + r) * 4;
    for (int t = 0; t < 4; ++t) {
      const i64 p = 4 * g + t;
      d[t] = p < k ? (uint8_t)((uint8_t)q[p] ^ (uint8_t)flip) : 0;
    }
  }
}

// Step 2 for all of C: tile(i0, j0) -> sink(tile, i0, j0, rows, cols).
template <class Sink>
void qgemm_blocks(const QKernelTable& qk, i64 M, i64 N, i64 kg, const uint8_t* apack, const int8_t* bpack,
                  const Sink& sink) {
  const int MR = qk.mr, NR = qk.nr;
  const i64 row_panels = ceil_div(M, MR), col_panels = ceil_div(N, NR);
  const int threads = (double)M * N * kg * 4 < kParallelMinMacs ? 1 : num_threads();
  // Column panels per task: B's block in L2, and enough tasks to keep every thread busy when M is small.
  const i64 mc_panels = max_i(1, kMcRows / MR);
  const i64 row_tasks = ceil_div(row_panels, mc_panels);
  i64 nc_panels = max_i(1, kNcBytes / (kg * 4 * NR));
  if (row_tasks < 2 * threads) nc_panels = min_i(nc_panels, max_i(1, ceil_div(col_panels, 2 * threads)));
  const i64 col_tasks = ceil_div(col_panels, nc_panels);
  auto task = [&](int64_t t, int) {
    const i64 cb = t / row_tasks, rb = t % row_tasks;  // column block outer: its B block is shared
    alignas(64) int32_t tile[kQMaxTile];
    const i64 s0 = cb * nc_panels, s1 = min_i(col_panels, s0 + nc_panels);
    const i64 p0 = rb * mc_panels, p1 = min_i(row_panels, p0 + mc_panels);
    for (i64 p = p0; p < p1; ++p) {
      const uint8_t* a = apack + p * MR * kg * 4;
      const i64 i0 = p * MR, rows = min_i(MR, M - i0);
      for (i64 s = s0; s < s1; ++s) {
        const i64 j0 = s * NR, cols = min_i(NR, N - j0);
        qk.ukr(kg, a, bpack + s * NR * kg * 4, tile);
        sink(tile, i0, j0, rows, cols);
      }
    }
  };
  const i64 tasks = row_tasks * col_tasks;
  if (threads <= 1 || tasks == 1) {
    for (i64 t = 0; t < tasks; ++t) task(t, 0);
    return;
  }
  parallel_for(tasks, task, threads);
}

}  // namespace

bool cpu_has_vnni() {
  static const bool has = cpu_has_vnni_impl();
  return has;
}

// A packed for the micro-kernels: row_panels panels of MR rows, row i < M written by put(i, r, panel) (put_row),
// the rows past M zero; a task per panel once the work is worth waking the pool.
template <class PutRow>
uint8_t* pack_a(const QKernelTable& qk, i64 M, i64 K, QWorkspace& ws, PutRow put) {
  const int MR = qk.mr;
  const i64 kg = ceil_div(K, 4), row_panels = ceil_div(M, MR);
  const size_t panel_bytes = (size_t)(MR * kg * 4);
  uint8_t* apack = aligned64(ws.a, panel_bytes * (size_t)row_panels);
  auto pack_panel = [&](int64_t p, int) {
    uint8_t* panel = apack + p * panel_bytes;
    for (int r = 0; r < MR; ++r) {
      const i64 i = p * MR + r;
      if (i < M) {
        put(i, r, panel);
      } else {
        for (i64 g = 0; g < kg; ++g) memset(panel + (g * MR + r) * 4, 0, 4);
      }
    }
  };
  if ((double)M * K < kParallelMinQuantize || num_threads() <= 1) {
    for (i64 p = 0; p < row_panels; ++p) pack_panel(p, 0);
  } else {
    parallel_for(row_panels, pack_panel);
  }
  return apack;
}

// 128 * colsum[j], what the product of activations packed as q + 128 (qk.a_shift) has too much; null unshifted.
const int32_t* shift_correction(const QKernelTable& qk, const int32_t* colsum, i64 N, std::vector<int32_t>& buf) {
  if (!qk.a_shift) return nullptr;
  buf.resize((size_t)N);
  for (i64 j = 0; j < N; ++j) buf[j] = 128 * colsum[j];
  return buf.data();
}

const QKernelTable& qkernels() {
  const char* isa = kernels().name;
  if (strcmp(isa, "avx512") == 0) return cpu_has_vnni() ? qtable_vnni() : qtable_avx2();
  if (strcmp(isa, "avx2") == 0) return qtable_avx2();
  return qtable_scalar();
}

i64 qgemm_packed_bytes(const QKernelTable& qk, i64 K, i64 N) {
  return ceil_div(N, qk.nr) * qk.nr * ceil_div(K, 4) * 4;
}

void qgemm_pack_b(const QKernelTable& qk, i64 K, i64 N, const int8_t* B, i64 ldb, int8_t* dst, int32_t* colsum) {
  const int NR = qk.nr;
  const i64 kg = ceil_div(K, 4), panels = ceil_div(N, NR);
  for (i64 s = 0; s < panels; ++s) {
    int8_t* d = dst + s * NR * kg * 4;
    for (i64 g = 0; g < kg; ++g)
      for (int j = 0; j < NR; ++j)
        for (int t = 0; t < 4; ++t) {
          const i64 k = 4 * g + t, col = s * NR + j;
          d[(g * NR + j) * 4 + t] = k < K && col < N ? B[k * ldb + col] : 0;
        }
  }
  for (i64 j = 0; j < N; ++j) colsum[j] = 0;
  for (i64 k = 0; k < K; ++k)
    for (i64 j = 0; j < N; ++j) colsum[j] += B[k * ldb + j];
}

void qgemm_s32(i64 M, i64 N, i64 K, const int8_t* A, i64 lda, const int8_t* packed_b, const int32_t* colsum,
               int32_t* C, i64 ldc) {
  // "FLOPs": 2 integer operations per multiply-add.
  GS_PROFILE_SCOPE("qgemm", 2.0 * M * N * K, 1.0 * (M * K + K * N) + 4.0 * M * N, M, N, K);
  if (M <= 0 || N <= 0) return;
  const QKernelTable& qk = qkernels();
  const i64 kg = ceil_div(K, 4);
  static thread_local QWorkspace ws;
  uint8_t* apack = pack_a(qk, M, K, ws, [&](i64 i, int r, uint8_t* panel) {
    put_row(A + i * lda, K, kg, qk.mr, r, qk.a_shift, panel);
  });
  std::vector<int32_t> c128;
  const int32_t* corr = shift_correction(qk, colsum, N, c128);
  const int NR = qk.nr;
  qgemm_blocks(qk, M, N, kg, apack, packed_b, [&](const int32_t* tile, i64 i0, i64 j0, i64 rows, i64 cols) {
    for (i64 i = 0; i < rows; ++i)
      for (i64 j = 0; j < cols; ++j)
        C[(i0 + i) * ldc + j0 + j] = tile[i * NR + j] - (corr ? corr[j0 + j] : 0);
  });
}

void qdense_forward(i64 M, i64 N, i64 K, const float* X, i64 ldx, const int8_t* packed_w, const int32_t* colsum,
                    const float* w_scale, const float* bias, ActParams act, float* Y, i64 ldy, float* x_scale) {
  GS_PROFILE_SCOPE("qdense_forward", 2.0 * M * N * K, 4.0 * M * K + 1.0 * K * N + 4.0 * M * N, M, N, K);
  if (M <= 0 || N <= 0) return;
  const QKernelTable& qk = qkernels();
  const KernelTable& kt = kernels();
  const int NR = qk.nr;
  const i64 kg = ceil_div(K, 4);
  static thread_local QWorkspace ws;
  // Quantize each row (its scale to x_scale) and pack it.
  uint8_t* apack = pack_a(qk, M, K, ws, [&](i64 i, int r, uint8_t* panel) {
    thread_local std::vector<int8_t> qrow;
    if ((i64)qrow.size() < K) qrow.resize((size_t)K);
    qk.quantize_row(X + i * ldx, K, qrow.data(), &x_scale[i]);
    put_row(qrow.data(), K, kg, qk.mr, r, qk.a_shift, panel);
  });
  std::vector<int32_t> c128;
  const int32_t* corr = shift_correction(qk, colsum, N, c128);
  // Softmax needs whole rows, which a tile does not see: one row pass after the product (as dense.cpp).
  const bool softmax = act.kind == kSoftmax, linear = act.kind == kLinear || softmax;
  qgemm_blocks(qk, M, N, kg, apack, packed_w, [&](const int32_t* tile, i64 i0, i64 j0, i64 rows, i64 cols) {
    float* y = Y + i0 * ldy + j0;
    qk.epilogue(tile, NR, rows, cols, corr ? corr + j0 : nullptr, w_scale + j0, x_scale + i0,
                bias ? bias + j0 : nullptr, y, ldy);
    if (!linear)
      for (i64 i = 0; i < rows; ++i) kt.act_forward(act, y + i * ldy, y + i * ldy, 0, cols);
  });
  if (softmax) {
    for (i64 i = 0; i < M; ++i) kt.softmax_forward(Y + i * ldy, Y + i * ldy, N, 0, 1);
  }
}

}  // namespace cpu
}  // namespace gradsmith
