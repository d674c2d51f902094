// Launch helpers shared by the CUDA kernel files: grid sizes for grid-stride loops and the launch check.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include <string>

#include "cuda/runtime.h"

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
