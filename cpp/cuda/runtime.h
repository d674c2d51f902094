// The CUDA side of gradsmith: device queries, a caching allocator, and the
// check that turns every failed CUDA call into an exception naming the call.
//
// Built only when CMake finds a CUDA toolkit (GRADSMITH_CUDA=AUTO|ON); the
// runtime is linked statically, so a wheel built with CUDA imports on a
// machine with no GPU and no driver: available() is then false and
// unavailable_reason() says why (the driver's own error string).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <stdexcept>
#include <string>

namespace gradsmith {
namespace cuda {

// A failed CUDA call: what was being done, and CUDA's error string.
struct Error : std::runtime_error {
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};
// Out of device memory: the request and what the device had free.
struct OutOfMemory : Error {
  OutOfMemory(const std::string& what, size_t requested, size_t free_bytes)
      : Error(what), requested(requested), free_bytes(free_bytes) {}
  size_t requested, free_bytes;
};

// Whether a CUDA device can be used, and if not, why ("" when it can).
bool available();
std::string unavailable_reason();
int device_count();  // 0 when unavailable
std::string device_name(int device);
void synchronize();

// The caching allocator: freed blocks are kept (by rounded size) for reuse, so
// a training loop stops calling cudaMalloc after its first step.
void* allocate(size_t bytes);
void release(void* ptr);
size_t memory_allocated();  // bytes handed out and not yet released
size_t memory_cached();     // bytes kept for reuse
void empty_cache();         // give the kept blocks back to the driver
// The device's free and total memory in bytes (cudaMemGetInfo).
void mem_get_info(size_t* free_bytes, size_t* total_bytes);

// Copies between host and device memory (synchronous).
void copy_to_device(void* dst, const void* src, size_t bytes);
void copy_to_host(void* dst, const void* src, size_t bytes);

}  // namespace cuda
}  // namespace gradsmith
