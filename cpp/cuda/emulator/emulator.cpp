// The gradsmith CUDA emulator: the runtime API of cuda_runtime.h on host memory, and kernels run on the CPU
// with CUDA's semantics, built to find bugs rather than to be fast.
//
// Execution. One launch runs at a time (a process-wide lock), on the thread that launches it, when it is
// launched: a stream's work is always finished, events are always complete, and cudaStreamWaitEvent has
// nothing to wait for. Or, with Settings::defer_streams, work waits in per-stream queues until the host
// waits for it, and the streams then run interleaved in a shuffled order that respects only stream order
// and events (streams created without cudaStreamNonBlocking share the legacy stream's queue: a stricter
// order than CUDA's, never a looser one). The grid's blocks run one after the other, in a shuffled order
// (settings().shuffle_seed). The threads of a block are fibers on that one host thread: each runs until it
// reaches a barrier or returns, then the next runnable one (in a shuffled order again); when none can run,
// the barrier they all wait at is released. Why fibers and not one OS thread per CUDA thread: a barrier is
// then a plain switch with no lock and no data race in the emulator itself, the order of the threads is
// ours to choose (and to shuffle from a seed, so a run reproduces), and blocks of 256 threads cost 256 small
// stacks, not 256 threads. The switch itself is a few instructions of assembly on x86-64 (callee-saved
// registers, MXCSR and the x87 control word: what the System V ABI asks a call to preserve), and ucontext
// elsewhere (or with -DGS_EMULATOR_UCONTEXT), whose signal-mask system call per switch made tests/cuda
// three times slower.
//
// Checks, each failing the launch with an error that names the kernel (cudaGetLastError returns it and
// cudaGetErrorString explains it, so the code's own checks turn it into an exception):
//   - a __syncthreads that some threads of the block never reach (they returned first);
//   - threads waiting at different kinds of barrier (__syncthreads against __syncwarp / mma_sync), or a
//     warp-collective that some lanes of the warp never reach;
//   - a write outside a device allocation: 256 bytes before every block and 1 KiB after the bytes in use
//     (set_valid_bytes) hold a pattern checked after every launch.
// And to make bugs visible: static shared memory filled with NaN bytes before each block, new device
// memory filled with NaN bytes, launch configuration and copy ranges checked as CUDA would.
#include "cuda_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "emulator.h"

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

// The section the __shared__ macro puts static shared arrays in (cuda_runtime.h); weak, so a build with no
// shared array links too.
extern "C" char __start_gs_shared[] __attribute__((weak));
extern "C" char __stop_gs_shared[] __attribute__((weak));

struct CUstream_st {
  unsigned flags;
};
struct CUevent_st {
  unsigned flags;
};

namespace gradsmith_emu {
namespace {

constexpr size_t kFrontGuard = 256;  // cudaMalloc aligns to 256 bytes: the guard keeps that alignment
constexpr size_t kTailGuard = 1024;
constexpr unsigned char kGuardByte = 0xFD;
constexpr unsigned char kPoisonByte = 0xFF;  // a NaN as float and as double, -1 as an integer
constexpr size_t kStackBytes = 256 << 10;

// One entry of a stream's queue: work to run, then an event to mark done; or a wait for an event.
struct Op {
  std::function<void()> run;
  CUevent_st* record = nullptr;
  uint64_t record_generation = 0;
  CUevent_st* wait = nullptr;
  uint64_t wait_generation = 0;
};
// Records of an event enqueued and done: cudaStreamWaitEvent waits for the latest record enqueued before it.
struct EventState {
  uint64_t enqueued = 0, done = 0;
};

struct Allocation {
  unsigned char* raw;  // kFrontGuard, then size bytes (+ kTailGuard)
  size_t size;
  size_t valid;  // bytes in use: [valid, valid + kTailGuard) is guard zone
};

struct State {
  std::recursive_mutex mutex;
  Settings settings;
  cudaError_t last_error = cudaSuccess;
  cudaError_t detail_error = cudaSuccess;
  std::string detail;  // the full string of detail_error
  std::map<uintptr_t, Allocation> allocations;  // user address -> allocation
  size_t used = 0;
  std::set<void*> host_blocks;
  std::map<CUstream_st*, unsigned> streams;  // stream -> flags
  std::map<CUevent_st*, EventState> events;
  std::map<CUstream_st*, std::deque<Op>> queues;  // null: the legacy default stream
  std::mt19937_64 stream_rng{12345};
  uint64_t launches = 0;

  State() {
    if (const char* s = getenv("GRADSMITH_EMULATOR_DEFER_STREAMS")) settings.defer_streams = atoi(s) != 0;
    if (const char* s = getenv("GRADSMITH_EMULATOR_SEED")) settings.shuffle_seed = strtoull(s, nullptr, 10);
    if (const char* s = getenv("GRADSMITH_EMULATOR_POISON")) settings.poison = atoi(s) != 0;
    if (const char* s = getenv("GRADSMITH_EMULATOR_MEMORY_MB")) settings.memory_bytes = strtoull(s, nullptr, 10) << 20;
  }
};
State& state() {
  static State* s = new State();  // leaked on purpose: used by destructors that run at exit
  return *s;
}

cudaError_t fail(cudaError_t err, const std::string& what) {
  State& s = state();
  s.last_error = err;
  s.detail_error = err;
  const char* base = "";
  switch (err) {
    case cudaErrorInvalidValue: base = "invalid argument"; break;
    case cudaErrorMemoryAllocation: base = "out of memory"; break;
    case cudaErrorInvalidConfiguration: base = "invalid configuration argument"; break;
    case cudaErrorInvalidDevice: base = "invalid device ordinal"; break;
    case cudaErrorInvalidResourceHandle: base = "invalid resource handle"; break;
    case cudaErrorIllegalAddress: base = "an illegal memory access was encountered"; break;
    case cudaErrorMisalignedAddress: base = "misaligned address"; break;
    case cudaErrorLaunchFailure: base = "unspecified launch failure"; break;
    default: base = "error"; break;
  }
  s.detail = std::string(base) + " (gradsmith CUDA emulator: " + what + ")";
  return err;
}

// The allocation whose bytes in use contain [p, p + bytes), or null.
Allocation* find_range(const void* p, size_t bytes) {
  State& s = state();
  const uintptr_t a = (uintptr_t)p;
  auto it = s.allocations.upper_bound(a);
  if (it == s.allocations.begin()) return nullptr;
  --it;
  if (a - it->first + bytes > it->second.valid) return nullptr;
  return &it->second;
}

void write_guards(Allocation& al) {
  memset(al.raw, kGuardByte, kFrontGuard);
  memset(al.raw + kFrontGuard + al.valid, kGuardByte, kTailGuard);
}

// The first guard byte that changed, as an offset from the start of the bytes in use; false when intact.
bool guard_broken(const Allocation& al, long long* offset) {
  for (size_t i = 0; i < kFrontGuard; ++i)
    if (al.raw[i] != kGuardByte) {
      *offset = (long long)i - (long long)kFrontGuard;
      return true;
    }
  const unsigned char* tail = al.raw + kFrontGuard + al.valid;
  for (size_t i = 0; i < kTailGuard; ++i)
    if (tail[i] != kGuardByte) {
      *offset = (long long)(al.valid + i);
      return true;
    }
  return false;
}

// ---- streams -------------------------------------------------------------------------------------------
bool valid_stream(cudaStream_t st) { return !st || state().streams.count(st); }
CUstream_st* queue_of(cudaStream_t st) {
  return st && (state().streams[st] & cudaStreamNonBlocking) ? st : nullptr;
}
bool runnable(const Op& op) {
  if (!op.wait) return true;
  auto it = state().events.find(op.wait);
  return it == state().events.end() || it->second.done >= op.wait_generation;
}
void execute(Op& op) {
  if (op.run) op.run();
  if (op.record) {
    auto it = state().events.find(op.record);
    if (it != state().events.end()) it->second.done = std::max(it->second.done, op.record_generation);
  }
}
void enqueue(cudaStream_t st, Op op) {
  State& s = state();
  if (!s.settings.defer_streams) {
    execute(op);
    return;
  }
  s.queues[queue_of(st)].push_back(std::move(op));
}
// Runs queued work, a runnable stream head at a time in a shuffled order, until done() or nothing can run.
template <class Done>
void drain(Done done) {
  State& s = state();
  std::vector<CUstream_st*> ready;
  while (!done()) {
    ready.clear();
    for (auto& kv : s.queues)
      if (!kv.second.empty() && runnable(kv.second.front())) ready.push_back(kv.first);
    if (ready.empty()) return;
    CUstream_st* pick = ready[(size_t)(s.stream_rng() % ready.size())];
    Op op = std::move(s.queues[pick].front());
    s.queues[pick].pop_front();
    execute(op);
  }
}
void drain_all() {
  drain([] {
    for (auto& kv : state().queues)
      if (!kv.second.empty()) return false;
    return true;
  });
}
void drain_stream(cudaStream_t st) {
  CUstream_st* q = queue_of(st);
  drain([q] { return state().queues[q].empty(); });
}

// ---- fibers ------------------------------------------------------------------------------------------------
enum FiberState { kReady, kAtBlockBarrier, kAtWarp, kDone };

#if defined(__x86_64__) && defined(__linux__) && !defined(GS_EMULATOR_UCONTEXT)
#define GS_FAST_SWITCH 1
// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack, stores the stack
// pointer in *save_sp, and resumes the stack load_sp saved the same way (or prepared by start_fiber).
extern "C" void gs_emu_switch(void** save_sp, void* load_sp);
asm(R"(
  .text
  .p2align 4
  .globl gs_emu_switch
  .hidden gs_emu_switch
  .type gs_emu_switch, @function
gs_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size gs_emu_switch, .-gs_emu_switch
)");
#endif

struct Fiber {
#if GS_FAST_SWITCH
  void* sp;
#else
  ucontext_t context;
#endif
  FiberState state;
  uint3 index;
  WarpOp op;  // at a warp-collective: which one, and this lane's part
  Lane lane;
};

struct BlockRun {
#if GS_FAST_SWITCH
  void* scheduler;
#else
  ucontext_t scheduler;
#endif
  std::vector<Fiber> fibers;
  std::vector<void*> stacks;
  int current = -1;
  void (*thread)(void*) = nullptr;
  void* ctx = nullptr;
  std::mt19937_64 rng;
};
BlockRun& run() {
  static BlockRun* r = new BlockRun();
  return *r;
}
bool g_in_kernel = false;
// The first fault() of the running launch: its error, and where.
cudaError_t g_fault = cudaSuccess;
std::string g_fault_what;

void* stack_of(int i) {
  BlockRun& r = run();
  while ((int)r.stacks.size() <= i) {
    // A stack with an inaccessible page below it: an overflow faults instead of corrupting a neighbour.
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void* p = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) {
      fprintf(stderr, "gradsmith CUDA emulator: no memory for a fiber stack\n");
      abort();
    }
    mprotect(p, page, PROT_NONE);
    r.stacks.push_back(static_cast<char*>(p) + page);
  }
  return r.stacks[(size_t)i];
}

void fiber_main() {
  BlockRun& r = run();
  r.thread(r.ctx);
  r.fibers[(size_t)r.current].state = kDone;
#if GS_FAST_SWITCH
  gs_emu_switch(&r.fibers[(size_t)r.current].sp, r.scheduler);
  __builtin_unreachable();
#endif
  // ucontext: returning resumes uc_link, the scheduler
}

// Fiber t, ready to run thread t from its start on stack `stack`.
void start_fiber(Fiber& f, void* stack) {
  BlockRun& r = run();
#if GS_FAST_SWITCH
  // The frame gs_emu_switch pops: MXCSR and control word (the launching thread's), six registers, then the
  // return address fiber_main, entered with the stack 8 bytes off 16-byte alignment, as after a call.
  uint32_t control[2];
  asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(control[0]), "=m"(control[1]));
  void** sp = reinterpret_cast<void**>(static_cast<char*>(stack) + kStackBytes);
  *--sp = nullptr;  // fiber_main's return address: it never returns
  *--sp = reinterpret_cast<void*>(&fiber_main);
  for (int i = 0; i < 6; ++i) *--sp = nullptr;
  --sp;
  memcpy(sp, control, sizeof control);
  f.sp = sp;
  (void)r;
#else
  getcontext(&f.context);
  f.context.uc_stack.ss_sp = stack;
  f.context.uc_stack.ss_size = kStackBytes;
  f.context.uc_link = &r.scheduler;
  makecontext(&f.context, fiber_main, 0);
#endif
}

void resume_fiber(Fiber& f) {
#if GS_FAST_SWITCH
  gs_emu_switch(&run().scheduler, f.sp);
#else
  swapcontext(&run().scheduler, &f.context);
#endif
}

void yield_to_scheduler(FiberState st) {
  BlockRun& r = run();
  if (!g_in_kernel || r.current < 0) {
    fprintf(stderr, "gradsmith CUDA emulator: a barrier outside a kernel\n");
    abort();
  }
  Fiber& f = r.fibers[(size_t)r.current];
  f.state = st;
#if GS_FAST_SWITCH
  gs_emu_switch(&f.sp, r.scheduler);
#else
  swapcontext(&f.context, &r.scheduler);
#endif
}

std::string block_name(const char* kernel) {
  return std::string("kernel ") + kernel + ", block (" + std::to_string(blockIdx.x) + ", " +
         std::to_string(blockIdx.y) + ", " + std::to_string(blockIdx.z) + ")";
}

// Runs every thread of the current block to its end; false (with the error set) when they cannot all get
// there.
bool run_block(const char* kernel) {
  BlockRun& r = run();
  State& s = state();
  const int n = (int)(blockDim.x * blockDim.y * blockDim.z);
  if (__start_gs_shared && __stop_gs_shared)
    memset(__start_gs_shared, kPoisonByte, (size_t)(__stop_gs_shared - __start_gs_shared));
  r.fibers.resize((size_t)n);
  for (int t = 0; t < n; ++t) {
    Fiber& f = r.fibers[(size_t)t];
    f.state = kReady;
    f.index = {(unsigned)t % blockDim.x, (unsigned)t / blockDim.x % blockDim.y,
               (unsigned)t / (blockDim.x * blockDim.y)};
    f.op = nullptr;
    start_fiber(f, stack_of(t));
  }
  std::vector<int> order;
  order.reserve((size_t)n);
  for (;;) {
    order.clear();
    for (int t = 0; t < n; ++t)
      if (r.fibers[(size_t)t].state == kReady) order.push_back(t);
    if (s.settings.shuffle_seed) std::shuffle(order.begin(), order.end(), r.rng);
    for (int t : order) {
      r.current = t;
      threadIdx = r.fibers[(size_t)t].index;
      resume_fiber(r.fibers[(size_t)t]);
    }
    r.current = -1;
    int done = 0, at_block = 0, at_warp = 0;
    for (const Fiber& f : r.fibers) {
      done += f.state == kDone;
      at_block += f.state == kAtBlockBarrier;
      at_warp += f.state == kAtWarp;
    }
    if (done == n) return true;
    // Warps whose lanes have all reached the same collective: run it, and the lanes go on.
    bool released = false;
    for (int w0 = 0; w0 < n; w0 += 32) {
      const int w1 = std::min(n, w0 + 32);
      int arrived = 0, exited = 0;
      for (int t = w0; t < w1; ++t) {
        arrived += r.fibers[(size_t)t].state == kAtWarp;
        exited += r.fibers[(size_t)t].state == kDone;
      }
      if (arrived == 0) continue;
      if (arrived + exited == w1 - w0 && exited > 0) {
        fail(cudaErrorLaunchFailure, block_name(kernel) + ": " + std::to_string(exited) + " lanes of warp " +
                                         std::to_string(w0 / 32) + " exited while the others wait at a " +
                                         "warp-collective operation (__syncwarp or wmma)");
        return false;
      }
      if (arrived != w1 - w0) continue;
      const Fiber& first = r.fibers[(size_t)w0];
      std::vector<Lane> lanes;
      for (int t = w0; t < w1; ++t) {
        const Fiber& f = r.fibers[(size_t)t];
        if (f.op != first.op || f.lane.key != first.lane.key || f.lane.key2 != first.lane.key2) {
          fail(cudaErrorLaunchFailure, block_name(kernel) + ": the lanes of warp " + std::to_string(w0 / 32) +
                                           " reached different warp-collective operations (or gave them "
                                           "different pointers or strides)");
          return false;
        }
        lanes.push_back(f.lane);
      }
      if (first.op) {
        const uint3 saved = threadIdx;
        first.op(lanes.data(), (int)lanes.size());
        threadIdx = saved;
      }
      for (int t = w0; t < w1; ++t) r.fibers[(size_t)t].state = kReady;
      released = true;
    }
    if (released) continue;
    if (at_block > 0 && at_block + done == n && done > 0) {
      fail(cudaErrorLaunchFailure, block_name(kernel) + ": divergent __syncthreads: " + std::to_string(done) +
                                       " of " + std::to_string(n) +
                                       " threads returned while the others wait at a barrier they never reach");
      return false;
    }
    if (at_block == n) {
      for (Fiber& f : r.fibers) f.state = kReady;
      continue;
    }
    fail(cudaErrorLaunchFailure, block_name(kernel) + ": deadlock: " + std::to_string(at_block) +
                                     " threads wait at __syncthreads, " + std::to_string(at_warp) +
                                     " at a warp-collective operation, " + std::to_string(done) + " returned");
    return false;
  }
}

}  // namespace

// ---- kernel launches ------------------------------------------------------------------------------------
namespace {
void launch_now(const char* name, dim3 grid, dim3 block, void (*thread)(void*), void* ctx) {
  State& s = state();
  ++s.launches;
  BlockRun& r = run();
  r.thread = thread;
  r.ctx = ctx;
  r.rng.seed(s.settings.shuffle_seed ^ (s.launches * 0x9E3779B97F4A7C15ull));
  gridDim = grid;
  blockDim = block;
  const unsigned long long blocks = (unsigned long long)grid.x * grid.y * grid.z;
  std::vector<unsigned long long> order((size_t)blocks);
  for (unsigned long long b = 0; b < blocks; ++b) order[(size_t)b] = b;
  if (s.settings.shuffle_seed) std::shuffle(order.begin(), order.end(), r.rng);
  g_in_kernel = true;
  g_fault = cudaSuccess;
  bool ok = true;
  for (unsigned long long b : order) {
    blockIdx = {(unsigned)(b % grid.x), (unsigned)(b / grid.x % grid.y),
                (unsigned)(b / ((unsigned long long)grid.x * grid.y))};
    if (!(ok = run_block(name))) break;
  }
  g_in_kernel = false;
  if (ok && g_fault != cudaSuccess) {
    fail(g_fault, std::string("kernel ") + name + ", " + g_fault_what);
    ok = false;
  }
  // Guard zones, also after a failure: a block that wrote out of bounds may be why it failed.
  for (auto& kv : s.allocations) {
    long long offset = 0;
    if (!guard_broken(kv.second, &offset)) continue;
    write_guards(kv.second);  // reported once
    if (ok)
      fail(cudaErrorIllegalAddress, std::string("kernel ") + name + " wrote outside device memory: byte " +
                                        std::to_string(offset) + " of a block of " +
                                        std::to_string(kv.second.valid) + " bytes in use");
    ok = false;
  }
}
}  // namespace

void launch(const char* name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
            void (*thread)(void*), std::shared_ptr<void> ctx) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
    fail(cudaErrorInvalidConfiguration, std::string("kernel ") + name + ": grid (" + std::to_string(grid.x) + ", " +
                                            std::to_string(grid.y) + ", " + std::to_string(grid.z) + "), block (" +
                                            std::to_string(block.x) + ", " + std::to_string(block.y) + ", " +
                                            std::to_string(block.z) + ")");
    return;
  }
  if (shared_bytes > 0) {
    fail(cudaErrorInvalidValue, std::string("kernel ") + name + ": dynamic shared memory is not emulated yet");
    return;
  }
  if (!valid_stream(stream)) {
    fail(cudaErrorInvalidResourceHandle, std::string("kernel ") + name + " launched on a stream that does not exist");
    return;
  }
  Op op;
  op.run = [name, grid, block, thread, ctx] { launch_now(name, grid, block, thread, ctx.get()); };
  enqueue(stream, std::move(op));
}

bool device_pointer_argument(const char* kernel, int index, const void* p) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!p) return true;
  const uintptr_t a = (uintptr_t)p;
  auto it = s.allocations.upper_bound(a);
  if (it != s.allocations.begin() && a - std::prev(it)->first <= std::prev(it)->second.size) return true;
  char buf[32];
  snprintf(buf, sizeof buf, "%p", p);
  fail(cudaErrorInvalidValue, std::string("kernel ") + kernel + ": pointer argument " + std::to_string(index) +
                                  " (" + buf + ") is not device memory");
  return false;
}

void fault(int error, const char* what) {
  if (!g_in_kernel || g_fault != cudaSuccess) return;
  g_fault = (cudaError_t)error;
  g_fault_what = "block (" + std::to_string(blockIdx.x) + ", " + std::to_string(blockIdx.y) + ", " +
                 std::to_string(blockIdx.z) + "), thread (" + std::to_string(threadIdx.x) + ", " +
                 std::to_string(threadIdx.y) + ", " + std::to_string(threadIdx.z) + "): " + what;
}

void warp_collective(WarpOp op, void* data, const void* key, long long key2) {
  BlockRun& r = run();
  if (r.current < 0) {
    fprintf(stderr, "gradsmith CUDA emulator: a warp-collective outside a kernel\n");
    abort();
  }
  Fiber& f = r.fibers[(size_t)r.current];
  f.op = op;
  f.lane = {data, key, key2};
  yield_to_scheduler(kAtWarp);
}

int lane_id() {
  return (int)((threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) % 32);
}

// ---- emulator settings -------------------------------------------------------------------------------
Settings settings() {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  return state().settings;
}
void configure(const Settings& s) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  state().settings = s;
}
uint64_t launches() {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  return state().launches;
}

void set_valid_bytes(void* p, size_t bytes) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  // In the legacy stream's order, where the caching allocator's blocks are ordered: work queued before still
  // sees the block as it was. With nothing queued there, at once: a copy stream may write the block next.
  Op op;
  op.run = [p, bytes] {
    State& st = state();
    auto it = st.allocations.find((uintptr_t)p);
    if (it == st.allocations.end() || bytes > it->second.size) return;
    Allocation& al = it->second;
    al.valid = bytes;
    if (st.settings.poison) memset(al.raw + kFrontGuard, kPoisonByte, bytes);
    write_guards(al);
  };
  if (s.queues[nullptr].empty()) execute(op);
  else enqueue(nullptr, std::move(op));
}

}  // namespace gradsmith_emu

using gradsmith_emu::fail;
using gradsmith_emu::state;

void __syncthreads() { gradsmith_emu::yield_to_scheduler(gradsmith_emu::kAtBlockBarrier); }
void __syncwarp(unsigned mask) {
  gradsmith_emu::warp_collective(nullptr, nullptr, nullptr, (long long)mask);
}

// ---- runtime API ------------------------------------------------------------------------------------------
cudaError_t cudaGetLastError() {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  const cudaError_t e = state().last_error;
  state().last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  return state().last_error;
}

const char* cudaGetErrorString(cudaError_t err) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  if (err != cudaSuccess && err == state().detail_error) return state().detail.c_str();
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorMisalignedAddress: return "misaligned address";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice, "cudaSetDevice(" + std::to_string(device) + ")");
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  if (device != 0) return fail(cudaErrorInvalidDevice, "cudaGetDeviceProperties(" + std::to_string(device) + ")");
  memset(prop, 0, sizeof *prop);
  snprintf(prop->name, sizeof prop->name, "gradsmith CPU emulator (CUDA semantics on the host, sm_80)");
  prop->totalGlobalMem = state().settings.memory_bytes;
  prop->sharedMemPerBlock = 48 << 10;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->major = 8;
  prop->minor = 0;
  prop->multiProcessorCount = 1;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  if (device != 0) return fail(cudaErrorInvalidDevice, "cudaDeviceGetAttribute");
  switch (attr) {
    case cudaDevAttrComputeCapabilityMajor: *value = 8; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
  }
  return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute not emulated");
}

// The error of queued work that failed (or of the call itself), as synchronizing calls report it.
cudaError_t pending_error() { return state().last_error; }

cudaError_t cudaDeviceSynchronize() {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  gradsmith_emu::drain_all();
  return pending_error();
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  const gradsmith_emu::State& s = state();
  *total_bytes = s.settings.memory_bytes;
  *free_bytes = s.used < s.settings.memory_bytes ? s.settings.memory_bytes - s.used : 0;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  using namespace gradsmith_emu;
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  *ptr = nullptr;
  const size_t size = (bytes + 255) / 256 * 256;
  if (size > s.settings.memory_bytes || s.used + size > s.settings.memory_bytes)
    return fail(cudaErrorMemoryAllocation, "cudaMalloc of " + std::to_string(bytes) + " bytes with " +
                                               std::to_string(s.settings.memory_bytes - s.used) + " free");
  void* raw = aligned_alloc(256, kFrontGuard + size + kTailGuard);
  if (!raw) return fail(cudaErrorMemoryAllocation, "the host has no memory for the emulated device");
  Allocation al{static_cast<unsigned char*>(raw), size, size};
  if (s.settings.poison) memset(al.raw + kFrontGuard, kPoisonByte, size);
  write_guards(al);
  *ptr = al.raw + kFrontGuard;
  s.allocations[(uintptr_t)*ptr] = al;
  s.used += size;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  using namespace gradsmith_emu;
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!ptr) return cudaSuccess;
  drain_all();  // cudaFree synchronizes the device
  auto it = s.allocations.find((uintptr_t)ptr);
  if (it == s.allocations.end()) return fail(cudaErrorInvalidValue, "cudaFree of a pointer cudaMalloc did not return");
  s.used -= it->second.size;
  free(it->second.raw);
  s.allocations.erase(it);
  return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  *ptr = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
  if (!*ptr) return fail(cudaErrorMemoryAllocation, "cudaHostAlloc of " + std::to_string(bytes) + " bytes");
  state().host_blocks.insert(*ptr);
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* ptr) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  if (!ptr) return cudaSuccess;
  gradsmith_emu::drain_all();
  if (!state().host_blocks.erase(ptr))
    return fail(cudaErrorInvalidValue, "cudaFreeHost of a pointer cudaHostAlloc did not return");
  free(ptr);
  return cudaSuccess;
}

namespace {
// The device side of a copy must lie inside the bytes in use of one allocation.
cudaError_t check_device_range(const void* p, size_t bytes, const char* what) {
  if (bytes == 0 || gradsmith_emu::find_range(p, bytes)) return cudaSuccess;
  char buf[64];
  snprintf(buf, sizeof buf, "%p", p);
  return fail(cudaErrorInvalidValue, std::string(what) + ": " + std::to_string(bytes) + " bytes at " + buf +
                                         " are not inside one device allocation's bytes in use");
}
}  // namespace

namespace {
// A copy as it runs (on its stream, maybe later): the device side must lie inside allocations' bytes in use.
void copy_now(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice)
    if (check_device_range(dst, bytes, "cudaMemcpy destination")) return;
  if (kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice)
    if (check_device_range(src, bytes, "cudaMemcpy source")) return;
  if (bytes) memmove(dst, src, bytes);
}
gradsmith_emu::Op op_of(std::function<void()> run) {
  gradsmith_emu::Op op;
  op.run = std::move(run);
  return op;
}
}  // namespace

// On the legacy stream, and the host waits for it (and so for the work queued before it there).
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  gradsmith_emu::enqueue(nullptr, op_of([=] { copy_now(dst, src, bytes, kind); }));
  gradsmith_emu::drain_stream(nullptr);
  return pending_error();
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  if (!gradsmith_emu::valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle, "cudaMemcpyAsync stream");
  gradsmith_emu::enqueue(stream, op_of([=] { copy_now(dst, src, bytes, kind); }));
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  if (!gradsmith_emu::valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle, "cudaMemsetAsync stream");
  gradsmith_emu::enqueue(stream, op_of([=] {
    if (!check_device_range(ptr, bytes, "cudaMemset")) memset(ptr, value, bytes);
  }));
  return cudaSuccess;
}
cudaError_t cudaMemset(void* ptr, int value, size_t bytes) { return cudaMemsetAsync(ptr, value, bytes, nullptr); }

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  *stream = new CUstream_st{flags};
  state().streams[*stream] = flags;
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  if (!stream || !state().streams.count(stream)) return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy");
  gradsmith_emu::drain_stream(stream);  // its work still runs
  state().queues.erase(stream);
  state().streams.erase(stream);
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  if (!gradsmith_emu::valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize");
  gradsmith_emu::drain_stream(stream);
  return pending_error();
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  if (!gradsmith_emu::valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent stream");
  auto it = state().events.find(event);
  if (it == state().events.end()) return fail(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent event");
  gradsmith_emu::Op op;
  op.wait = event;
  op.wait_generation = it->second.enqueued;  // the latest record so far; none: nothing to wait for
  gradsmith_emu::enqueue(stream, std::move(op));
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  *event = new CUevent_st{flags};
  state().events[*event] = {};
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  if (!state().events.count(event)) return fail(cudaErrorInvalidResourceHandle, "cudaEventDestroy");
  gradsmith_emu::drain_all();  // queued records and waits may name it
  state().events.erase(event);
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  auto it = state().events.find(event);
  if (it == state().events.end()) return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord event");
  if (!gradsmith_emu::valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord stream");
  gradsmith_emu::Op op;
  op.record = event;
  op.record_generation = ++it->second.enqueued;
  gradsmith_emu::enqueue(stream, std::move(op));
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  auto it = state().events.find(event);
  if (it == state().events.end()) return fail(cudaErrorInvalidResourceHandle, "cudaEventSynchronize");
  gradsmith_emu::EventState* e = &it->second;
  gradsmith_emu::drain([e] { return e->done >= e->enqueued; });
  return pending_error();
}
