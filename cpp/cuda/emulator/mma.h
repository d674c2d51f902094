// The gradsmith CUDA emulator's <mma.h>: nvcuda::wmma from its documented behaviour.
//
// A fragment is spread over the 32 lanes of a warp, num_elements values a lane; which element of the tile a
// lane holds is unspecified by CUDA, and kernels that rely only on the documentation do not care. Here lane
// l holds elements l, l + 32, l + 64, ... of the tile in row-major order. load/store/fill touch only the
// calling lane's elements; mma_sync is warp-collective (gradsmith_emu::warp_collective): when all 32 lanes
// have arrived, the products of the whole tiles are formed once and each lane gets its part of D.
//
// The products are exact in float (TF32 and BF16 inputs have at most 11 significant bits) and are summed
// into C in k order, in float: a real tensor core may sum in another order and with other rounding.
#pragma once

#include <stdint.h>
#include <string.h>

#include "cuda_bf16.h"
#include "cuda_runtime.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
namespace precision {
struct tf32 {};
}  // namespace precision

// Float to TF32 (10 mantissa bits), rounded to nearest with ties away from zero (cvt.rna.tf32.f32); kept in a
// float whose low 13 bits are zero.
inline float __float_to_tf32(float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u += 0x1000u;  // Inf and NaN stay as they are
  u &= 0xffffe000u;
  memcpy(&v, &u, 4);
  return v;
}

namespace detail {
template <class T> struct Storage { using type = T; };
template <> struct Storage<precision::tf32> { using type = float; };
template <class Use, int M, int N, int K> struct Shape;
template <int M, int N, int K> struct Shape<matrix_a, M, N, K> { static constexpr int rows = M, cols = K; };
template <int M, int N, int K> struct Shape<matrix_b, M, N, K> { static constexpr int rows = K, cols = N; };
template <int M, int N, int K> struct Shape<accumulator, M, N, K> { static constexpr int rows = M, cols = N; };
inline float to_float(float v) {  // a TF32 input: the low 13 bits are not read
  uint32_t u;
  memcpy(&u, &v, 4);
  u &= 0xffffe000u;
  memcpy(&v, &u, 4);
  return v;
}
inline float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
}  // namespace detail

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  using storage_element_type = typename detail::Storage<T>::type;
  using element_type = storage_element_type;
  static constexpr int rows = detail::Shape<Use, M, N, K>::rows, cols = detail::Shape<Use, M, N, K>::cols;
  static_assert(rows * cols % 32 == 0, "a fragment's tile is spread over 32 lanes");
  static constexpr int num_elements = rows * cols / 32;
  storage_element_type x[num_elements];
};

template <class Use, int M, int N, int K, class T, class L, class V>
inline void fill_fragment(fragment<Use, M, N, K, T, L>& f, const V& v) {
  for (int e = 0; e < f.num_elements; ++e) f.x[e] = v;
}

// Element e of the calling lane is tile element lane + 32 e, row-major: (row, col) in the tile.
template <class F>
inline void tile_position(int e, int* row, int* col) {
  const int idx = gradsmith_emu::lane_id() + 32 * e;
  *row = idx / F::cols;
  *col = idx % F::cols;
}

template <class Use, int M, int N, int K, class T, class L, class P>
inline void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const P* p, unsigned ldm) {
  using F = fragment<Use, M, N, K, T, L>;
  constexpr bool col = std::is_same<L, col_major>::value;
  for (int e = 0; e < F::num_elements; ++e) {
    int r, c;
    tile_position<F>(e, &r, &c);
    f.x[e] = col ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c];
  }
}

template <int M, int N, int K, class T>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T>& f, const T* p, unsigned ldm, layout_t layout) {
  using F = fragment<accumulator, M, N, K, T>;
  for (int e = 0; e < F::num_elements; ++e) {
    int r, c;
    tile_position<F>(e, &r, &c);
    f.x[e] = layout == mem_col_major ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c];
  }
}

template <int M, int N, int K, class T>
inline void store_matrix_sync(T* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm, layout_t layout) {
  using F = fragment<accumulator, M, N, K, T>;
  for (int e = 0; e < F::num_elements; ++e) {
    int r, c;
    tile_position<F>(e, &r, &c);
    (layout == mem_col_major ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c]) = f.x[e];
  }
}

namespace detail {
template <class D, class A, class B, class C>
struct MmaArgs {
  D* d;
  const A* a;
  const B* b;
  const C* c;
};

// Runs once per warp when all lanes have arrived: D = A B + C over the whole tiles.
template <class D, class A, class B, class C>
void mma_all_lanes(const gradsmith_emu::Lane* lanes, int n) {
  constexpr int M = A::rows, K = A::cols, N = B::cols;
  float a[M][K], b[K][N], d[M][N];
  for (int l = 0; l < n; ++l) {
    const auto& args = *static_cast<const MmaArgs<D, A, B, C>*>(lanes[l].data);
    for (int e = 0; e < A::num_elements; ++e) {
      const int idx = l + 32 * e;
      a[idx / K][idx % K] = to_float(args.a->x[e]);
    }
    for (int e = 0; e < B::num_elements; ++e) {
      const int idx = l + 32 * e;
      b[idx / N][idx % N] = to_float(args.b->x[e]);
    }
    for (int e = 0; e < C::num_elements; ++e) {
      const int idx = l + 32 * e;
      d[idx / N][idx % N] = args.c->x[e];
    }
  }
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float s = d[i][j];
      for (int k = 0; k < K; ++k) s += a[i][k] * b[k][j];  // each product is exact in float
      d[i][j] = s;
    }
  for (int l = 0; l < n; ++l) {  // written only now: D may be C
    const auto& args = *static_cast<const MmaArgs<D, A, B, C>*>(lanes[l].data);
    for (int e = 0; e < D::num_elements; ++e) {
      const int idx = l + 32 * e;
      args.d->x[e] = d[idx / N][idx % N];
    }
  }
}
}  // namespace detail

template <int M, int N, int K, class TA, class LA, class TB, class LB, class T>
inline void mma_sync(fragment<accumulator, M, N, K, T>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
                     const fragment<matrix_b, M, N, K, TB, LB>& b, const fragment<accumulator, M, N, K, T>& c) {
  using D = fragment<accumulator, M, N, K, T>;
  using A = fragment<matrix_a, M, N, K, TA, LA>;
  using B = fragment<matrix_b, M, N, K, TB, LB>;
  detail::MmaArgs<D, A, B, D> args{&d, &a, &b, &c};
  gradsmith_emu::warp_collective(&detail::mma_all_lanes<D, A, B, D>, &args, nullptr, 0);
}

}  // namespace wmma
}  // namespace nvcuda
