#include "cuda/runtime.h"

#include <cuda_runtime.h>
#if defined(GRADSMITH_CUDA_EMULATOR)
#include "emulator.h"
#endif

#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace gradsmith {
namespace cuda {
namespace {

void check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  cudaGetLastError();  // clear a sticky error so later calls report their own
  throw Error(std::string(what) + ": " + cudaGetErrorString(err));
}

// Probed once: cudaGetDeviceCount fails without a driver or a device, and its
// error string is the reason users see.
struct Probe {
  int count = 0;
  std::string reason;
  Probe() {
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      count = 0;
      reason = std::string("CUDA reports: ") + cudaGetErrorString(err);
      cudaGetLastError();
    } else if (count == 0) {
      reason = "CUDA reports no device";
    }
  }
};
const Probe& probe() {
  static const Probe p;
  return p;
}

// Blocks are kept by size rounded up to 512 bytes (small) or 2 MiB (large).
size_t rounded(size_t bytes) {
  const size_t step = bytes < (size_t(1) << 20) ? 512 : (size_t(2) << 20);
  return (bytes + step - 1) / step * step;
}

struct Cache {
  std::mutex mutex;
  std::multimap<size_t, void*> free_blocks;      // size -> block
  std::unordered_map<void*, size_t> live;         // block -> size
  size_t allocated = 0, cached = 0;
};
Cache& cache() {
  static Cache* c = new Cache();  // leaked on purpose: freeing at exit can outlive the driver
  return *c;
}

// A block handed out for `bytes`: the emulator guards the rest of it and poisons the bytes (cuda/emulator/).
inline void handed_out(void* p, size_t bytes) {
#if defined(GRADSMITH_CUDA_EMULATOR)
  gradsmith_emu::set_valid_bytes(p, bytes);
#else
  (void)p, (void)bytes;
#endif
}

}  // namespace

bool available() { return probe().count > 0; }
std::string unavailable_reason() { return probe().reason; }
int device_count() { return probe().count; }

std::string device_name(int device) {
  if (device < 0 || device >= device_count())
    throw std::out_of_range("device " + std::to_string(device) + " does not exist (" +
                            std::to_string(device_count()) + " devices)");
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  return prop.name;
}

void synchronize() {
  if (!available()) throw Error("CUDA is not available: " + unavailable_reason());
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

void* allocate(size_t bytes) {
  if (!available()) throw Error("CUDA is not available: " + unavailable_reason());
  const size_t size = rounded(bytes ? bytes : 1);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.free_blocks.lower_bound(size);
  if (it != c.free_blocks.end() && it->first < 2 * size) {  // reuse a block of about this size
    void* p = it->second;
    const size_t got = it->first;
    c.free_blocks.erase(it);
    c.cached -= got;
    c.live[p] = got;
    c.allocated += got;
    handed_out(p, bytes);
    return p;
  }
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, size);
  if (err == cudaErrorMemoryAllocation) {  // give the cache back and try once more
    cudaGetLastError();
    for (auto& kv : c.free_blocks) cudaFree(kv.second);
    c.free_blocks.clear();
    c.cached = 0;
    err = cudaMalloc(&p, size);
  }
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_bytes = 0, total = 0;
    cudaMemGetInfo(&free_bytes, &total);
    throw OutOfMemory("CUDA out of memory: asked for " + std::to_string(size) + " bytes, " +
                          std::to_string(free_bytes) + " free of " + std::to_string(total),
                      size, free_bytes);
  }
  check(err, "cudaMalloc");
  c.live[p] = size;
  c.allocated += size;
  handed_out(p, bytes);
  return p;
}

void release(void* ptr) {
  if (ptr == nullptr) return;
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.live.find(ptr);
  if (it == c.live.end()) throw Error("release: not a block of gradsmith's allocator");
  c.allocated -= it->second;
  c.cached += it->second;
  c.free_blocks.emplace(it->second, ptr);
  c.live.erase(it);
}

size_t memory_allocated() {
  std::lock_guard<std::mutex> lock(cache().mutex);
  return cache().allocated;
}
size_t memory_cached() {
  std::lock_guard<std::mutex> lock(cache().mutex);
  return cache().cached;
}

void empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  // Each block leaves the list as it is freed, so a failure part-way never leaves a freed block behind.
  while (!c.free_blocks.empty()) {
    auto it = c.free_blocks.begin();
    const size_t size = it->first;
    void* p = it->second;
    c.free_blocks.erase(it);
    c.cached -= size;
    check(cudaFree(p), "cudaFree");
  }
}

void mem_get_info(size_t* free_bytes, size_t* total_bytes) {
  if (!available()) throw Error("CUDA is not available: " + unavailable_reason());
  check(cudaMemGetInfo(free_bytes, total_bytes), "cudaMemGetInfo");
}

void copy_to_device(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy host to device");
}
void copy_to_host(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy device to host");
}

}  // namespace cuda
}  // namespace gradsmith
