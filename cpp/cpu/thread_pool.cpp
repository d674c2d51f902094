#include "cpu/thread_pool.h"

#include "cpu/denormals.h"

#include <errno.h>
#include <sched.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace gradsmith {
namespace cpu {
namespace {

// Why the pool has fewer threads than asked for, or ignored OMP_NUM_THREADS (empty when it did neither);
// gradsmith warns with it at import. Written only under the pool's region lock.
std::string g_note;

int cpu_count() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
#endif
  unsigned n = std::thread::hardware_concurrency();
  return n >= 1 ? (int)n : 1;
}

// OMP_NUM_THREADS when it is a whole number in [1, kMaxThreads] (a larger one is capped), else the CPUs
// this process may run on.
int default_threads() {
  const char* env = std::getenv("OMP_NUM_THREADS");
  if (env == nullptr || *env == '\0') return cpu_count();
  errno = 0;
  char* end = nullptr;
  const long long n = std::strtoll(env, &end, 10);
  if (errno != 0 || end == env || *end != '\0' || n < 1) {
    g_note = "OMP_NUM_THREADS='" + std::string(env) + "' is not a whole number >= 1 that fits in 64 bits: " +
             "it is ignored";
    return cpu_count();
  }
  if (n > kMaxThreads) {
    g_note = "OMP_NUM_THREADS=" + std::string(env) + " is more than " + std::to_string(kMaxThreads) +
             " threads: gradsmith uses " + std::to_string(kMaxThreads);
    return kMaxThreads;
  }
  return (int)n;
}

thread_local bool t_inside_task = false;

class Pool {
 public:
  Pool() {
    const int want = default_threads();
    const int got = resize(want);
    if (got < want) g_note = "only " + std::to_string(got) + " of " + std::to_string(want) +
                             " threads could be started (the system refused more): gradsmith uses " +
                             std::to_string(got);
  }
  ~Pool() { stop_workers(); }

  int size() const { return n_threads_; }

  // Starts n - 1 workers and returns the pool's size: fewer than n when the system refuses to create more
  // threads (a memory or process limit), never a half-made pool.
  int resize(int n) {
    if (n < 1 || n > kMaxThreads)
      throw std::invalid_argument("number of threads must be in [1, " + std::to_string(kMaxThreads) + "], got " +
                                  std::to_string(n));
    std::lock_guard<std::mutex> region(region_mutex_);
    stop_workers();
    stopping_ = false;
    workers_.reserve((size_t)n);
    // A worker starts from the generation current now, not when its thread
    // first runs: a region begun in between must not be missed.
    const uint64_t gen = generation_.load();
    int started = 1;
    try {
      for (int t = 1; t < n; ++t, ++started) workers_.emplace_back([this, t, gen] { worker_main(t, gen); });
    } catch (const std::system_error&) {  // EAGAIN: keep the threads that did start
    }
    n_threads_ = started;
    return started;
  }

  void run(int64_t n_tasks, const TaskFn& fn, int max_threads) {
    if (n_tasks <= 0) return;
    int want = max_threads > 0 && max_threads < n_threads_ ? max_threads : n_threads_;
    if (want > n_tasks) want = (int)n_tasks;
    std::unique_lock<std::mutex> region(region_mutex_, std::defer_lock);
    if (want <= 1 || t_inside_task || !region.try_lock()) {
      run_serial(n_tasks, fn);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn_ = &fn;
      fp_state_ = FloatingPointState::of_this_thread();  // workers compute as the caller does
      n_tasks_ = n_tasks;
      next_task_.store(0);
      active_workers_ = want - 1;
      finished_.store(0);
      const uint64_t gen = ++generation_;
      region_.store((gen & kGenMask) << 32);
    }
    wake_.notify_all();
    work(0);
    // Every task is taken. Close the region, so that a worker still waking up
    // stays out of it, and wait only for those that came in: waiting for a
    // sleeping worker to wake (tens to hundreds of microseconds) would cost
    // more than a small kernel.
    const uint64_t entered = region_.fetch_or(kClosed, std::memory_order_acq_rel) & kCountMask;
    for (int spin = 0; (uint64_t)finished_.load(std::memory_order_acquire) != entered; ++spin) {
      if (spin > 4000) std::this_thread::yield();
    }
    fn_ = nullptr;
  }

 private:
  void run_serial(int64_t n_tasks, const TaskFn& fn) {
    bool was_inside = t_inside_task;
    t_inside_task = true;
    for (int64_t t = 0; t < n_tasks; ++t) fn(t, 0);
    t_inside_task = was_inside;
  }

  void work(int thread) {
    if (thread != 0) fp_state_.apply_to_this_thread();
    t_inside_task = true;
    for (int64_t t; (t = next_task_.fetch_add(1)) < n_tasks_;) (*fn_)(t, thread);
    t_inside_task = false;
  }

  void worker_main(int thread, uint64_t seen) {
    for (;;) {
      {
        // Spin briefly for the next region (kernels come in quick bursts
        // during training), then sleep.
        for (int spin = 0; spin < 20000 && generation_seen() == seen && !stopping_flag(); ++spin) {
#if defined(__x86_64__)
          __builtin_ia32_pause();
#endif
        }
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_.load();
        if (thread > active_workers_) continue;  // this region wants fewer threads
      }
      if (!enter_region(seen)) continue;  // it closed before this worker got there
      work(thread);
      finished_.fetch_add(1, std::memory_order_release);
    }
  }

  // Join region `gen` unless the caller has closed it (or moved on).
  bool enter_region(uint64_t gen) {
    uint64_t word = region_.load(std::memory_order_acquire);
    while ((word >> 32) == (gen & kGenMask) && !(word & kClosed)) {
      if (region_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel)) return true;
    }
    return false;
  }

  uint64_t generation_seen() const { return generation_.load(std::memory_order_acquire); }
  bool stopping_flag() const { return stopping_.load(std::memory_order_acquire); }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex region_mutex_;  // one parallel region at a time
  std::mutex mutex_;         // guards the fields below
  std::condition_variable wake_;
  // Written under mutex_ (for the condition variable), read without it while spinning.
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stopping_{false};
  int active_workers_ = 0;
  const TaskFn* fn_ = nullptr;
  FloatingPointState fp_state_;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  // The open region: its generation (low 32 bits, in the high word), a closed
  // flag, and how many workers entered it; and how many of those have finished.
  static constexpr uint64_t kGenMask = 0xffffffffu, kClosed = uint64_t(1) << 31, kCountMask = kClosed - 1;
  std::atomic<uint64_t> region_{0};
  std::atomic<int> finished_{0};
};

Pool& pool() {
  // Leaked on purpose: joining threads during interpreter shutdown can hang.
  static Pool* p = new Pool();
  return *p;
}

}  // namespace

int num_threads() { return pool().size(); }
int set_num_threads(int n) { return pool().resize(n); }
std::string thread_pool_note() {
  pool();
  return g_note;
}
void parallel_for(int64_t n_tasks, const TaskFn& fn, int max_threads) { pool().run(n_tasks, fn, max_threads); }

}  // namespace cpu
}  // namespace gradsmith
