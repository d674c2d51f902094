// What only the emulated build has beyond the CUDA runtime API (cuda_runtime.h): its settings, and the
// caching allocator's hook that tells it how much of a block is in use.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <string>

namespace gradsmith_emu {

struct Settings {
  // Seed of the shuffled order of a grid's blocks and of a block's runnable threads between barriers;
  // 0 runs both in index order. Environment: GRADSMITH_EMULATOR_SEED (default 1).
  uint64_t shuffle_seed = 1;
  // Fill device memory handed out by cudaMalloc and the caching allocator with NaN bytes (0xFF), so reading
  // memory never written shows. Environment: GRADSMITH_EMULATOR_POISON (default 1).
  bool poison = true;
  // The emulated device's memory. Environment: GRADSMITH_EMULATOR_MEMORY_MB (default 512).
  size_t memory_bytes = size_t(512) << 20;
  // Streams as CUDA allows them to run, not as they were enqueued: kernels, copies and event records wait in
  // one queue per stream until the host waits for them (a synchronous copy, cudaEventSynchronize,
  // cudaDeviceSynchronize, ...); then the streams' heads run in a shuffled order (shuffle_seed) that keeps
  // each stream's order and cudaStreamWaitEvent's, and nothing else. A missing event wait shows as a copy
  // that lands too late or too early. Off: everything runs when it is enqueued.
  // Environment: GRADSMITH_EMULATOR_DEFER_STREAMS (default 0).
  bool defer_streams = false;
};
Settings settings();
void configure(const Settings& s);

// The allocator (cuda/runtime.cpp) hands out `bytes` of the device block at p: the rest of the block becomes
// guard zone (checked after every launch) and, with poison on, the bytes in use are filled with NaN bytes.
void set_valid_bytes(void* p, size_t bytes);

// Kernel launches so far (a test can see that a call launched something).
uint64_t launches();

}  // namespace gradsmith_emu
