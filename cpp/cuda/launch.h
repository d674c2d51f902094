// Launch helpers shared by the CUDA kernel files: the launch itself, grid sizes for grid-stride loops and the
// launch check.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include <string>

#include "cuda/runtime.h"

// GS_LAUNCH(kernel, grid, block, shared_bytes, stream)(args...): kernel<<<grid, block, shared_bytes, stream>>>(args...)
// under nvcc; in the emulated build (GRADSMITH_CUDA=EMULATE, cuda/emulator/) the same kernel runs on the CPU.
#if defined(GRADSMITH_CUDA_EMULATOR)
#define GS_LAUNCH(kernel, grid, block, shared_bytes, stream) \
  ::gradsmith_emu::launcher(kernel, #kernel, grid, block, shared_bytes, stream)
#else
#define GS_LAUNCH(kernel, grid, block, shared_bytes, stream) kernel<<<grid, block, shared_bytes, stream>>>
#endif

namespace gradsmith {
namespace cuda {

constexpr int kLaunchThreads = 256;

// Blocks of kLaunchThreads for n elements, capped: grid-stride loops cover the rest.
inline unsigned launch_blocks(int64_t n) {
  const int64_t b = (n + kLaunchThreads - 1) / kLaunchThreads;
  return (unsigned)(b < 1 ? 1 : (b < 65535 * 32 ? b : 65535 * 32));
}

// Throws Error naming the kernel when its launch failed.
inline void check_launch(const char* kernel) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw Error(std::string(kernel) + ": " + cudaGetErrorString(err));
}

}  // namespace cuda
}  // namespace gradsmith
