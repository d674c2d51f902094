// The persistent thread pool every CPU kernel shares.
//
// parallel_for(n, fn) runs fn(task, thread) for task in [0, n) on the calling
// thread plus the pool's workers and returns when all are done. Tasks are
// handed out dynamically, so kernels must make each task's result independent
// of which thread runs it (fixed task boundaries; partial results combined in
// task order), which keeps every result identical for any thread count.
//
// One parallel region runs at a time; a call made from inside a task, or while
// another thread's region is running, runs its tasks serially on the caller.
#pragma once

#include <stdint.h>

#include <string>

#include <type_traits>

namespace gradsmith {
namespace cpu {

// A non-owning reference to a callable fn(task, thread). parallel_for runs the
// callable before it returns, so nothing is copied: unlike std::function,
// which allocates for a lambda that captures more than two pointers.
class TaskFn {
 public:
  template <class F, class = std::enable_if_t<!std::is_same<std::decay_t<F>, TaskFn>::value>>
  TaskFn(const F& f)  // NOLINT: implicit, so a lambda passes straight to parallel_for
      : obj_(&f), call_([](const void* obj, int64_t task, int thread) { (*static_cast<const F*>(obj))(task, thread); }) {}
  void operator()(int64_t task, int thread) const { call_(obj_, task, thread); }

 private:
  const void* obj_;
  void (*call_)(const void*, int64_t, int);
};

// The most threads a pool may have.
constexpr int kMaxThreads = 1024;
// Threads used by kernels (workers + the caller). Default: OMP_NUM_THREADS if
// set (a whole number, at most kMaxThreads), else the CPUs this process may run on.
int num_threads();
// Resize the pool to n threads, 1 <= n <= kMaxThreads; returns the threads it has, fewer than n when the
// system refused to create more.
int set_num_threads(int n);
// Why the pool has fewer threads than asked for at start, or ignored OMP_NUM_THREADS; empty otherwise.
std::string thread_pool_note();
// Run fn over [0, n_tasks) on up to max_threads threads (0: all).
void parallel_for(int64_t n_tasks, const TaskFn& fn, int max_threads = 0);

// Threads worth waking for a streaming pass over n elements: below about 32K
// elements (a few microseconds) the caller alone is faster.
inline int threads_for_elements(int64_t n) { return n < (int64_t(1) << 15) ? 1 : 0; }

}  // namespace cpu
}  // namespace gradsmith
