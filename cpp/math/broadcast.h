// A mask broadcast over a batch of samples, as Dropout's noise_shape does (Keras): the mask has the
// input's size along some axes and 1 along the others. Shared by the CPU loop and the CUDA kernel.
#pragma once

#include <stdint.h>

#include "math/elementwise.h"

namespace gradsmith {
namespace math {

struct NoiseShape {
  static constexpr int kMaxRank = 8;  // per-sample axes
  int rank = 0;
  int64_t dims[kMaxRank] = {};        // the input's per-sample shape
  bool broadcast[kMaxRank] = {};      // the mask has size 1 along this axis
  bool batch_broadcast = false;       // one mask row for the whole batch

  // Elements of the mask for a batch: C order over (batch or 1, mask dims...).
  GS_HD int64_t mask_size(int64_t batch) const {
    int64_t n = batch_broadcast ? 1 : batch;
    for (int d = 0; d < rank; ++d) n *= broadcast[d] ? 1 : dims[d];
    return n;
  }
  // Which mask element the input element e (flat, batch axis first) reads.
  GS_HD int64_t mask_index(int64_t e) const {
    int64_t m = 0, stride = 1;
    for (int d = rank - 1; d >= 0; --d) {
      const int64_t i = e % dims[d];
      e /= dims[d];
      if (!broadcast[d]) m += i * stride, stride *= dims[d];
    }
    return batch_broadcast ? m : m + e * stride;
  }
};

namespace {

// Dropout's coin for element j of a mask: Philox(seed; counter (j / 4, offset))[j % 4] against the threshold
// ceil(rate * 2^24), as the dropout loops draw it element by element.
GS_HD bool dropout_kept(uint64_t seed, uint64_t offset, int64_t j, uint32_t threshold) {
  const uint64_t block = (uint64_t)j / 4;
  const U32x4 ctr = {{(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)offset, (uint32_t)(offset >> 32)}};
  return dropout_keep(philox4x32_10(ctr, (uint32_t)seed, (uint32_t)(seed >> 32)).v[j % 4], threshold);
}

}  // namespace
}  // namespace math
}  // namespace gradsmith
