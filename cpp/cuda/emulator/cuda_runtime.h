// The gradsmith CUDA emulator's <cuda_runtime.h>: what cpp/cuda/*.cu use of CUDA, for the host C++
// compiler (GRADSMITH_CUDA=EMULATE; this folder is on the include path only in that build).
//
// Kernels run on the CPU with CUDA's semantics (emulator.cpp): the blocks of a grid one after another on the
// launching thread (in a seeded, shuffled order), the threads of one block as cooperative fibers, so
// __syncthreads() is a real barrier. Device memory is host memory with guard zones. Everything runs when
// it is enqueued: streams and events are valid handles whose work is always already done, which is one of
// the schedules CUDA allows.
//
// Only what the sources use is here (grep cpp/cuda for the list); a kernel that needs more fails to compile
// in the emulated build, and the missing piece is added here from CUDA's documented behaviour.
#pragma once

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#ifndef GRADSMITH_CUDA_EMULATOR
#define GRADSMITH_CUDA_EMULATOR 1
#endif

// ---- qualifiers --------------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Static shared memory: one instance per kernel (blocks run one at a time), in the section gs_shared, which
// the emulator fills with NaN bytes before every block. GCC does not honour the section of a static in a
// function template: shared arrays of template kernels (tensor_gemm_kernel) are per kernel but not
// NaN-filled. Dynamic shared memory (extern __shared__) is not emulated yet: no kernel uses it.
#define __shared__ [[gnu::section("gs_shared")]] static

// ---- vector types and built-in variables -------------------------------------------------------------
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct __attribute__((aligned(16))) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

// Set by the emulator before it resumes a fiber: the running thread's coordinates.
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
constexpr int warpSize = 32;

// ---- device intrinsics --------------------------------------------------------------------------------
void __syncthreads();
void __syncwarp(unsigned mask = 0xffffffffu);
namespace gradsmith_emu {
// A fault a GPU would raise in the running thread (a misaligned load): the launch fails with it, naming the
// kernel and the block, once all its blocks have run.
void fault(int error, const char* what);
}  // namespace gradsmith_emu
template <class T>
inline T __ldg(const T* p) {
  if ((uintptr_t)p % alignof(T)) gradsmith_emu::fault(716, "__ldg from an address not aligned to its type");
  return *p;
}
// Round-to-nearest-even float operations, never contracted into an FMA (this file is compiled without
// -ffp-contract=fast on x86-64's baseline, which has no FMA; volatile keeps it so anywhere).
inline unsigned __float_as_uint(float x) {
  unsigned u;
  memcpy(&u, &x, sizeof u);
  return u;
}
inline float __uint_as_float(unsigned u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}
inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
inline float __fsub_rn(float a, float b) { volatile float r = a - b; return r; }
inline float __fdiv_rn(float a, float b) { volatile float r = a / b; return r; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }

// ---- runtime API ---------------------------------------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalAddress = 700,
  cudaErrorMisalignedAddress = 716,
  cudaErrorLaunchFailure = 719,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
enum cudaDeviceAttr {
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
};
struct CUstream_st;
struct CUevent_st;
typedef CUstream_st* cudaStream_t;
typedef CUevent_st* cudaEvent_t;
constexpr unsigned cudaStreamDefault = 0, cudaStreamNonBlocking = 1;
constexpr unsigned cudaEventDefault = 0, cudaEventDisableTiming = 2;
constexpr unsigned cudaHostAllocDefault = 0;

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int major, minor;
  int multiProcessorCount;
};

cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t err);
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaMalloc(void** ptr, size_t bytes);
template <class T>
inline cudaError_t cudaMalloc(T** ptr, size_t bytes) { return cudaMalloc(reinterpret_cast<void**>(ptr), bytes); }
cudaError_t cudaFree(void* ptr);
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned flags);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream = 0);
cudaError_t cudaMemset(void* ptr, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream = 0);
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t event);

// ---- kernel launches -----------------------------------------------------------------------------------
// GS_LAUNCH(kernel, grid, block, smem, stream)(args...) (cuda/launch.h) is kernel<<<...>>>(args...) under
// nvcc and gradsmith_emu::launcher(...)(args...) here: the arguments are converted to the kernel's
// parameter types once, and every emulated thread calls the kernel on its own copy of them.
namespace gradsmith_emu {

// Runs `thread(ctx)` once for every thread of the grid (now, or later on its stream: Settings::defer_streams);
// a failure becomes the error that cudaGetLastError() returns, its string naming `name`.
void launch(const char* name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
            void (*thread)(void*), std::shared_ptr<void> ctx);

// A kernel's pointer parameters must be null or point into (or one past) a device allocation: a host pointer
// handed to a kernel works here, on host memory, and faults on a GPU. False (the launch's error set) if not.
bool device_pointer_argument(const char* kernel, int index, const void* p);
template <class T>
bool pointer_argument_ok(const char* kernel, int index, const T& v) {
  if constexpr (std::is_pointer<T>::value) return device_pointer_argument(kernel, index, (const void*)v);
  else return true;
}

template <class... P>
struct Launcher {
  void (*kernel)(P...);
  const char* name;
  dim3 grid, block;
  size_t shared_bytes;
  cudaStream_t stream;

  template <class... A>
  void operator()(A&&... a) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
    using Args = std::tuple<std::decay_t<P>...>;
    struct Ctx {
      void (*kernel)(P...);
      Args args;
    };
    auto ctx = std::make_shared<Ctx>(Ctx{kernel, Args(static_cast<std::decay_t<P>>(std::forward<A>(a))...)});
    const bool pointers_ok = std::apply(
        [this](const auto&... v) {
          int index = 0;
          return (pointer_argument_ok(name, index++, v) && ...);
        },
        ctx->args);
    if (!pointers_ok) return;
    launch(name, grid, block, shared_bytes, stream,
           [](void* p) {
             const Ctx& c = *static_cast<const Ctx*>(p);
             Args own = c.args;  // a thread's parameters are its own
             std::apply(c.kernel, own);
           },
           std::move(ctx));
  }
};

template <class... P>
Launcher<P...> launcher(void (*kernel)(P...), const char* name, dim3 grid, dim3 block, size_t shared_bytes,
                        cudaStream_t stream) {
  return {kernel, name, grid, block, shared_bytes, stream};
}

// Warp-collective operations (mma.h, __syncwarp): each lane of a warp calls warp_collective with the same
// `op` and `key` (a pointer and a stride the operation requires to be uniform); once every lane of the warp
// has arrived, op(lanes, n, ctx) runs once with each lane's `data`, then the lanes go on. Lanes that reach
// different collectives, or a warp some of whose lanes have exited, fail the launch naming the kernel.
struct Lane {
  void* data;
  const void* key;
  long long key2;
};
using WarpOp = void (*)(const Lane* lanes, int n);
void warp_collective(WarpOp op, void* data, const void* key, long long key2);
int lane_id();  // threadIdx's linear index % 32

}  // namespace gradsmith_emu
