// Element-wise math of gradsmith: activations, loss terms, weight penalties, Philox
// (the optimizer's formulas: math/optimizer.h).
//
// This header is the one place where these formulas live. The CPU kernels
// include it in every per-ISA translation unit, and the CUDA kernels compile
// the very same functions as __host__ __device__, so CPU and GPU compute one
// formula.
//
// Everything here has internal linkage (an anonymous namespace): a copy
// compiled with -mavx512f in one file can never be merged by the linker with
// the baseline copy of another file, which would make a portable build run
// AVX-512 instructions on an older CPU. For the same reason only C math
// functions (expf, not std::exp) and no std templates are used.
#pragma once

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define GS_HD __host__ __device__ __forceinline__
#else
#define GS_HD inline
#endif

namespace gradsmith {

// Activation kinds, one line each: X(enumerator, name). The numbers are the
// binding's; Python reads names and numbers from _core.kinds.activations.
#define GS_ACTIVATION_KINDS(X)     \
  X(kLinear, "linear")             \
  X(kRelu, "relu")                 \
  X(kSigmoid, "sigmoid")           \
  X(kTanh, "tanh")                 \
  X(kSoftmax, "softmax")           \
  X(kLeakyRelu, "leaky_relu")      \
  X(kElu, "elu")                   \
  X(kSelu, "selu")                 \
  X(kGeluErf, "gelu_erf")          \
  X(kGeluTanh, "gelu_tanh")        \
  X(kSilu, "silu")                 \
  X(kSoftplus, "softplus")         \
  X(kSoftsign, "softsign")         \
  X(kHardSigmoid, "hard_sigmoid")  \
  X(kExponential, "exponential")

#define GS_KIND_ENUMERATOR(id, name) id,
enum Activation : int { GS_ACTIVATION_KINDS(GS_KIND_ENUMERATOR) kNumActivations };
#undef GS_KIND_ENUMERATOR

// The one parameter some activations take: leaky_relu's negative_slope, elu's alpha.
struct ActParams {
  int kind;
  float param;
};

namespace math {
namespace {

GS_HD float min_f(float a, float b) { return a < b ? a : b; }
GS_HD float max_f(float a, float b) { return a > b ? a : b; }
// Clamp that lets NaN through (as NumPy's clip does).
GS_HD float clamp_f(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }
GS_HD float sign_f(float x) { return x > 0.f ? 1.f : (x < 0.f ? -1.f : x); }  // sign(0)=0, sign(nan)=nan

constexpr float kSeluScale = 1.0507009873554805f;
constexpr float kSeluAlpha = 1.6732632423543772f;
constexpr float kSqrt2OverPi = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kInvSqrt2 = 0.7071067811865476f;      // 1/sqrt(2)
constexpr float kInvSqrt2Pi = 0.3989422804014327f;    // 1/sqrt(2 pi)
constexpr float kGeluCubic = 0.044715f;

// sigmoid(z) = 1 / (1 + e^-z), written so that neither branch overflows.
GS_HD float sigmoid(float z) {
  if (z >= 0.f) return 1.f / (1.f + expf(-z));
  float e = expf(z);
  return e / (1.f + e);
}

// softplus(z) = log(1 + e^z) = max(z, 0) + log1p(e^-|z|)
GS_HD float softplus(float z) { return max_f(z, 0.f) + log1pf(expf(-fabsf(z))); }

// ---------------------------------------------------------------------------
// Activations: y = f(z), and f'(z) for the backward pass dz = dy * f'(z).
// Softmax is row-wise and handled by its own kernels; here it is linear.
// ---------------------------------------------------------------------------
GS_HD float act_forward(int kind, float p, float z) {
  switch (kind) {
    case kRelu: return z > 0.f ? z : (z == z ? 0.f : z);      // relu(nan) = nan
    case kSigmoid: return sigmoid(z);
    case kTanh: return tanhf(z);
    case kLeakyRelu: return z >= 0.f ? z : p * z;             // p = negative_slope
    case kElu: return z > 0.f ? z : p * expm1f(z);            // p = alpha
    case kSelu: return kSeluScale * (z > 0.f ? z : kSeluAlpha * expm1f(z));
    // gelu(z) = z * Phi(z) = 0.5 z (1 + erf(z / sqrt 2))
    case kGeluErf: return 0.5f * z * (1.f + erff(z * kInvSqrt2));
    // gelu_tanh(z) = 0.5 z (1 + tanh(u)), u = sqrt(2/pi) (z + 0.044715 z^3)
    case kGeluTanh: return 0.5f * z * (1.f + tanhf(kSqrt2OverPi * (z + kGeluCubic * z * z * z)));
    case kSilu: return z * sigmoid(z);
    case kSoftplus: return softplus(z);
    case kSoftsign: return z / (1.f + fabsf(z));
    // Keras 3: hard_sigmoid(z) = relu6(z + 3) / 6
    case kHardSigmoid: return clamp_f(z * (1.f / 6.f) + 0.5f, 0.f, 1.f);
    case kExponential: return expf(z);
    default: return z;  // linear (and softmax's pre-activation)
  }
}

GS_HD float act_derivative(int kind, float p, float z) {
  switch (kind) {
    case kRelu: return z > 0.f ? 1.f : 0.f;
    case kSigmoid: { float s = sigmoid(z); return s * (1.f - s); }
    case kTanh: { float t = tanhf(z); return 1.f - t * t; }
    case kLeakyRelu: return z > 0.f ? 1.f : p;
    case kElu: return z > 0.f ? 1.f : p * expf(z);
    case kSelu: return kSeluScale * (z > 0.f ? 1.f : kSeluAlpha * expf(z));
    // d/dz z Phi(z) = Phi(z) + z phi(z)
    case kGeluErf:
      return 0.5f * (1.f + erff(z * kInvSqrt2)) + z * kInvSqrt2Pi * expf(-0.5f * z * z);
    // d/dz 0.5 z (1 + tanh u) = 0.5 (1 + t) + 0.5 z (1 - t^2) u',  u' = sqrt(2/pi)(1 + 3*0.044715 z^2)
    case kGeluTanh: {
      // For finite |z| > 1e4, tanh is exactly +-1 and f' exactly 1 or 0, but z^3 below would
      // overflow into inf * 0. (z = +-inf keeps the formula's NaN, as NumPy computes it.)
      if (fabsf(z) > 1e4f && fabsf(z) < INFINITY) return z > 0.f ? 1.f : 0.f;
      float t = tanhf(kSqrt2OverPi * (z + kGeluCubic * z * z * z));
      float du = kSqrt2OverPi * (1.f + 3.f * kGeluCubic * z * z);
      return 0.5f * (1.f + t) + 0.5f * z * (1.f - t * t) * du;
    }
    // d/dz z s(z) = s + z s (1 - s)
    case kSilu: { float s = sigmoid(z); return s * (1.f + z * (1.f - s)); }
    case kSoftplus: return sigmoid(z);
    case kSoftsign: { float d = 1.f + fabsf(z); return 1.f / (d * d); }
    case kHardSigmoid: return (z > -3.f && z < 3.f) ? (1.f / 6.f) : 0.f;
    case kExponential: return expf(z);
    default: return 1.f;
  }
}

// ---------------------------------------------------------------------------
// Loss terms, one element of one sample. Each returns the term's value and
// writes d(term)/d(pred) to *g. The kernels average over classes / sum over
// samples and scale the gradient by sample_weight / (C * N).
// ---------------------------------------------------------------------------
constexpr float kProbEpsilon = 1e-7f;  // Keras backend.epsilon()

// (p - t)^2
GS_HD float squared_error(float t, float p, float* g) { float e = p - t; *g = 2.f * e; return e * e; }
// |p - t|
GS_HD float absolute_error(float t, float p, float* g) { float e = p - t; *g = sign_f(e); return fabsf(e); }
// 0.5 e^2 for |e| <= d, else d (|e| - d/2)
GS_HD float huber(float t, float p, float d, float* g) {
  float e = p - t, a = fabsf(e);
  if (a <= d) { *g = e; return 0.5f * e * e; }
  *g = d * sign_f(e);
  return d * (a - 0.5f * d);
}
// -(t log p' + (1-t) log(1-p')), p' = clip(p, eps, 1-eps); zero gradient where clipped.
GS_HD float binary_xent_prob(float t, float p, float* g) {
  float pc = clamp_f(p, kProbEpsilon, 1.f - kProbEpsilon);
  bool inside = p >= kProbEpsilon && p <= 1.f - kProbEpsilon;
  *g = inside ? (pc - t) / (pc * (1.f - pc)) : (p == p ? 0.f : p);
  return -(t * logf(pc) + (1.f - t) * logf(1.f - pc));
}
// From logits x: max(x,0) - x t + log1p(e^-|x|), gradient sigmoid(x) - t.
GS_HD float binary_xent_logit(float t, float x, float* g) {
  *g = sigmoid(x) - t;
  return max_f(x, 0.f) - x * t + log1pf(expf(-fabsf(x)));
}

// NumPy's maximum: a NaN in either argument gives NaN.
GS_HD float nan_max_f(float a, float b) { return (a > b || a != a) ? a : b; }

// Hinge: m = 1 - t p, term max(m, 0), gradient -t where m > 0 (t in {-1, 1}: the caller converts 0/1 labels).
GS_HD float hinge_term(float t, float p, float* g) {
  const float m = 1.f - t * p;
  *g = m > 0.f ? -t : (m == m ? 0.f : m);
  return nan_max_f(m, 0.f);
}
// Squared hinge: max(m, 0)^2, gradient -2 t max(m, 0).
GS_HD float squared_hinge_term(float t, float p, float* g) {
  const float h = nan_max_f(1.f - t * p, 0.f);
  *g = -2.f * t * h;
  return h * h;
}
// log(cosh(x)), x = p - t, gradient tanh(x). Keras writes x + softplus(-2x) - log 2, which cancels for small
// x; 2 sinh(x/2)^2 = cosh(x) - 1 keeps it exact there (and |x| + log1p(e^-2|x|) - log 2 where cosh overflows).
GS_HD float log_cosh_term(float t, float p, float* g) {
  const float x = p - t, a = fabsf(x);
  *g = tanhf(x);
  if (a > 10.f) return a + log1pf(expf(-2.f * a)) - 0.6931471805599453f;
  const float s = sinhf(0.5f * x);
  return log1pf(2.f * s * s);
}
// Poisson: p - t log(p + eps), gradient 1 - t / (p + eps).
GS_HD float poisson_term(float t, float p, float* g) {
  const float q = p + kProbEpsilon;
  *g = 1.f - t / q;
  return p - t * logf(q);
}
// Squared log error: (log(max(p, eps) + 1) - log(max(t, eps) + 1))^2, gradient 2 d / (p + 1) where p > eps
// (log1p: the logs of values near 0 keep their digits).
GS_HD float squared_log_error_term(float t, float p, float* g) {
  const float pm = nan_max_f(p, kProbEpsilon);
  const float d = log1pf(pm) - log1pf(nan_max_f(t, kProbEpsilon));
  *g = p > kProbEpsilon ? 2.f * d / (pm + 1.f) : (p == p ? 0.f : p);
  return d * d;
}
// Absolute percentage error: 100 |t - p| / max(|t|, eps), gradient 100 sign(p - t) / max(|t|, eps).
GS_HD float absolute_percentage_error_term(float t, float p, float* g) {
  const float d = nan_max_f(fabsf(t), kProbEpsilon);
  *g = 100.f * sign_f(p - t) / d;
  return 100.f * fabsf(t - p) / d;
}
// Kullback-Leibler: t' log(t' / p') with t', p' clipped to [eps, 1]; gradient -t' / p' where p is inside.
GS_HD float kl_divergence_term(float t, float p, float* g) {
  const float tc = clamp_f(t, kProbEpsilon, 1.f), pc = clamp_f(p, kProbEpsilon, 1.f);
  const bool inside = p >= kProbEpsilon && p <= 1.f;
  *g = inside ? -tc / pc : (p == p ? 0.f : p);
  return tc * logf(tc / pc);
}

// ---------------------------------------------------------------------------
// Weight penalties (Keras L1L2) on one weight tensor: value l1 sum|w| + l2 sum w^2,
// gradient l1 sign(w) + 2 l2 w. The backends sum |w| and w^2 in double, each in
// its own fixed order; the formulas are these.
// ---------------------------------------------------------------------------
// The factors the gradient uses: l1 and 2 l2, each rounded once to float.
struct PenaltyFactors {
  float l1, two_l2;
};
GS_HD PenaltyFactors penalty_factors(double l1, double l2) { return {(float)l1, (float)(2.0 * l2)}; }
// d penalty / d w for one weight.
GS_HD float penalty_grad(float w, PenaltyFactors f) { return f.l1 * sign_f(w) + f.two_l2 * w; }
// The value from the sums; a zero factor adds nothing, even where its sum is infinite or NaN.
GS_HD double penalty_value(double l1, double l2, double abs_sum, double square_sum) {
  double v = 0.0;
  if (l1 != 0.0) v += l1 * abs_sum;
  if (l2 != 0.0) v += l2 * square_sum;
  return v;
}

// ---------------------------------------------------------------------------
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3").
// A counter-based generator: the bits for element i depend only on (seed, i),
// never on which thread or device computes them.
// ---------------------------------------------------------------------------
struct U32x4 { uint32_t v[4]; };

GS_HD U32x4 philox4x32_10(U32x4 c, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c.v[0];
    uint64_t p1 = (uint64_t)0xCD9E8D57u * c.v[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    U32x4 n = {{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
    c = n;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c;
}

// Uniform in [0, 1) from the top 24 bits: u = (r >> 8) / 2^24, exact in float32.
GS_HD float uniform_from_bits(uint32_t r) { return (float)(r >> 8) * (1.0f / 16777216.0f); }

// Dropout keeps an element iff u >= rate, i.e. iff (r >> 8) >= ceil(rate * 2^24):
// an integer compare, exact for any double rate (the caller computes the threshold).
GS_HD bool dropout_keep(uint32_t r, uint32_t threshold) { return (r >> 8) >= threshold; }

}  // namespace
}  // namespace math
}  // namespace gradsmith
