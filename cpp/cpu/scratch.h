// Per-thread scratch arrays that grow and never shrink: a kernel's temporary
// arrays (partial sums, per-buffer factors) come from here, so once a training
// loop has seen its largest shapes it allocates nothing.
//
// Each use site names its own Slot, so two live scratch arrays of one thread
// (say the optimizer's clip factors while sum_squares fills its partial sums)
// never share storage.
#pragma once

#include <stddef.h>

#include <vector>

namespace gradsmith {
namespace cpu {

enum ScratchSlot : int { kScratchPartialSums, kScratchLossPartials, kScratchClipScale, kScratchTaskBounds, kScratchGemvIn,
                         kScratchGemvOut, kScratchNarrowC, kScratchIm2col, kScratchConvWide,
                   kScratchConvKernel, kScratchEmbeddingStart, kScratchEmbeddingOrder,
                   kScratchEmbeddingFill };

template <class T, int Slot>
T* scratch(size_t n) {
  static thread_local std::vector<T> storage;
  if (storage.size() < n) storage.resize(n);
  return storage.data();
}

}  // namespace cpu
}  // namespace gradsmith
