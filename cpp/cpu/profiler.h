// The kernel profiler: one complete event (name, shapes, thread, start,
// duration, FLOPs, bytes) per profiled scope, recorded in C++.
//
//   GS_PROFILE_SCOPE("gemm", flops, bytes, d0, d1, d2);
//
// at the top of a kernel records the time until the end of the enclosing
// block. The name must be a string literal (its pointer is the event's name);
// flops, bytes and the shapes d0..d2 (unused: -1) are evaluated only while the
// profiler is on. Off, a scope costs one relaxed atomic load and a predictable
// branch (and the test of that same flag on the stack when the block ends).
//
// On, each thread appends to its own preallocated buffer (registered once in a
// global list): no lock and no allocation per event, only two steady-clock
// reads. A full buffer counts the event as dropped. Events nest: each keeps its
// kernel depth (kernels open around it on this thread) and its self time
// (duration minus the direct children's), so summaries can avoid counting a
// GEMM inside dense_forward twice.
//
// What a FLOP and a byte mean here: every float add, multiply, divide, compare
// or transcendental function (exp, log, sqrt, tanh, ...) counts one FLOP; bytes
// are the compulsory traffic, each array the kernel reads or writes counted
// once per direction (4 bytes a float, 8 an int64), as a roofline uses them.
#pragma once

#include <stdint.h>

#include <atomic>
#include <vector>

#include "cpu/kernel_table.h"

namespace gradsmith {
namespace cpu {
struct ParamBuffer;
}

namespace prof {

extern std::atomic<bool> g_enabled;

inline bool enabled() { return g_enabled.load(std::memory_order_relaxed); }

// Profiling session control (a session's start clears the previous events).
// start returns false when a session is already running.
bool start(int64_t max_events_per_thread);
void stop();
// Monotonic nanoseconds (CLOCK_MONOTONIC through std::chrono::steady_clock).
int64_t now_ns();

// User spans (Python's record_function): begin returns a token (-1 when the
// profiler is off), end closes the span of that token on this thread.
int64_t span_begin(const char* interned_name);
bool span_end(int64_t token);
// A stable pointer to a copy of name, for names that are not literals.
const char* intern(const char* name);

// One recorded event. kind: 0 kernel, 1 user span.
struct Event {
  const char* name;
  int64_t start_ns, dur_ns, self_ns;
  double flops, bytes;
  int64_t dims[3];
  int32_t depth, kind;
};

// Events of the current (or last) session of one thread.
struct ThreadEvents {
  int64_t os_tid;
  int32_t index;  // small per-thread number, in order of first event
  int64_t dropped;
  std::vector<Event> events;
};
// Copies every thread's events of the current (or last) session.
std::vector<ThreadEvents> collect();
int64_t session_start_ns();

// RAII scope of one kernel event; use through GS_PROFILE_SCOPE.
class Scope {
 public:
  explicit Scope(const char* name) noexcept : name_(name), on_(enabled()) {}
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  ~Scope() {
    if (__builtin_expect(on_, 0)) end();
  }
  bool on() const { return on_; }
  void begin(double flops, double bytes, int64_t d0 = -1, int64_t d1 = -1, int64_t d2 = -1) noexcept;

 private:
  void end() noexcept;
  const char* name_;
  bool on_;
  uint32_t session_ = 0;
  void* thread_ = nullptr;  // this thread's profiler state, looked up once in begin
  int64_t start_ = 0;
  double flops_ = 0, bytes_ = 0;
  int64_t dims_[3] = {-1, -1, -1};
};

// ---- cost models shared by several kernels (the rest are written at the kernel)
// Nominal FLOPs per element of an activation: forward y = f(z) counts 1 (linear 0;
// softmax 5: max compare, subtract, exp, sum, scale); backward dz = dy * f'(z)
// counts 2 (linear 0; softmax 9: recomputing y, then y * (dy - <dy, y>)).
double act_flops(ActParams act, bool backward);
// Optimizer step over all buffers. FLOPs per element: the update of
// math/elementwise.h in its plain form (sgd 2, with momentum 4; adam 12;
// rmsprop 9; adagrad 7) + 2 per element for a norm clip's sum of squares.
// Bytes per element: g read (twice with a norm clip), w and each state array
// present read and written.
double optimizer_flops(const OptimizerArgs& args, const std::vector<cpu::ParamBuffer>& buffers, bool norm_clip);
double optimizer_bytes(const std::vector<cpu::ParamBuffer>& buffers, bool norm_clip);
int64_t total_elements(const std::vector<cpu::ParamBuffer>& buffers);

}  // namespace prof
}  // namespace gradsmith

#define GS_PROF_CAT2_(a, b) a##b
#define GS_PROF_CAT_(a, b) GS_PROF_CAT2_(a, b)
#ifndef GS_NO_PROFILER
// The arguments after the name (flops, bytes, d0, d1, d2) are evaluated only
// when the profiler is on; "" name only compiles for a string literal.
#define GS_PROFILE_SCOPE(name, ...)                                           \
  ::gradsmith::prof::Scope GS_PROF_CAT_(gs_prof_scope_, __LINE__)("" name);   \
  if (__builtin_expect(GS_PROF_CAT_(gs_prof_scope_, __LINE__).on(), 0))        \
  GS_PROF_CAT_(gs_prof_scope_, __LINE__).begin(__VA_ARGS__)
#else
#define GS_PROFILE_SCOPE(name, ...) static_cast<void>(0)
#endif
