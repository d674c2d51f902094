// Event recording for the kernel profiler (profiler.h).
//
// Each thread owns a Buffer: a fixed table of chunk pointers, each chunk
// kChunk events, allocated the first time the thread fills that far and kept
// for later sessions. Only the owning thread writes a buffer; it publishes an
// event by storing count + 1 with release order, and a reader (collect, under
// the registry's mutex) reads events [0, count) after an acquire load of count,
// so no lock is taken per event. A session number makes "start clears the old
// events" lock-free too: a writer that sees a new session resets its own
// buffer before its first event of that session; the reader skips buffers that
// have not written in the current session.
//
// Per thread there is also a stack of open frames (kernel scopes and user
// spans) holding the time of their direct children, which gives each event its
// self time, and the kernel depth.
#include "cpu/profiler.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <new>
#include <string>
#include <unordered_set>

#include "cpu/ops.h"

namespace gradsmith {
namespace prof {

std::atomic<bool> g_enabled{false};

namespace {

constexpr int64_t kChunk = 4096;      // events per chunk (320 KiB)
constexpr int64_t kMaxChunks = 4096;  // so at most 16M events per thread and session
constexpr int kMaxDepth = 64;         // open frames tracked per thread
constexpr size_t kMaxNames = 1 << 16;  // distinct user span names kept

std::atomic<uint32_t> g_session{0};
std::atomic<int64_t> g_capacity{0};  // events per thread in this session
std::atomic<uint64_t> g_span_id{0};

struct Buffer {
  std::atomic<uint32_t> session{0};
  std::atomic<int64_t> count{0};
  std::atomic<int64_t> dropped{0};
  std::atomic<bool> owned{true};
  int64_t os_tid = 0;
  int32_t index = 0;
  Event* chunks[kMaxChunks] = {};  // chunks[i] is written before any count > i * kChunk is published
};

struct Registry {
  std::mutex mutex;
  std::vector<Buffer*> buffers;  // never freed: a reader may hold one while its thread exits
  std::unordered_set<std::string> names;
  int32_t next_index = 0;
  int64_t start_ns = 0;
};

// Leaked on purpose: thread-exit hooks may run after static destructors.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

// An open frame: a kernel scope (name == nullptr; its own data lives in the
// Scope) or a user span (name, start, id, session kept here).
struct Frame {
  int64_t child_ns;  // total duration of the direct children closed so far
  const char* name;
  int64_t start_ns;
  uint64_t id;
  uint32_t session;
};

// Plain data, zero-initialized: no constructor runs on first use in a thread.
struct ThreadState {
  Buffer* buf;
  bool exited;       // the thread is being torn down: record nothing more
  int frames;        // open frames
  int kernel_depth;  // open kernel scopes
  Frame frame[kMaxDepth];
};
thread_local ThreadState t_state;

// Marks the thread's buffer as free when the thread exits, so a later thread
// can reuse it (its events stay readable until then).
struct Owner {
  Buffer* buf = nullptr;
  ~Owner() {
    t_state.exited = true;
    t_state.buf = nullptr;
    if (buf) buf->owned.store(false, std::memory_order_release);
  }
};
thread_local Owner t_owner;

Buffer* register_thread(ThreadState& ts) noexcept {
  if (ts.exited) return nullptr;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const uint32_t session = g_session.load(std::memory_order_relaxed);
  Buffer* b = nullptr;
  for (Buffer* c : r.buffers)
    if (!c->owned.load(std::memory_order_acquire) && c->session.load(std::memory_order_relaxed) != session) {
      b = c;
      break;
    }
  if (!b) {
    b = new (std::nothrow) Buffer;
    if (!b) return nullptr;
    try {
      r.buffers.push_back(b);
    } catch (...) {
      delete b;
      return nullptr;
    }
  }
  b->owned.store(true, std::memory_order_relaxed);
  b->os_tid = (int64_t)syscall(SYS_gettid);
  b->index = r.next_index++;
  b->session.store(0, std::memory_order_relaxed);  // never a live session: reset on the first record
  ts.buf = b;
  t_owner.buf = b;
  return b;
}

// Chunk c of b, allocated on first use (once per kChunk events per thread, ever).
Event* chunk(Buffer* b, int64_t c) noexcept {
  if (!b->chunks[c]) b->chunks[c] = new (std::nothrow) Event[kChunk];
  return b->chunks[c];
}

// The thread's buffer, emptied if it last wrote in an earlier session; null when none can be had.
Buffer* session_buffer(ThreadState& ts) noexcept {
  Buffer* b = ts.buf ? ts.buf : register_thread(ts);
  if (!b) return nullptr;
  // Acquire: the reads of the last collect (before start's release) happen before these writes.
  const uint32_t session = g_session.load(std::memory_order_acquire);
  if (b->session.load(std::memory_order_relaxed) != session) {
    b->count.store(0, std::memory_order_relaxed);
    b->dropped.store(0, std::memory_order_relaxed);
    b->session.store(session, std::memory_order_release);
  }
  return b;
}

void record(ThreadState& ts, const Event& e) noexcept {
  Buffer* b = session_buffer(ts);
  if (!b) return;
  const int64_t n = b->count.load(std::memory_order_relaxed);
  Event* c = n < g_capacity.load(std::memory_order_relaxed) ? chunk(b, n / kChunk) : nullptr;
  if (!c) {
    b->dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  c[n % kChunk] = e;
  b->count.store(n + 1, std::memory_order_release);
}

// Closes frame f (the top one): returns its child time and adds its duration
// to the parent's.
int64_t pop_frame(ThreadState& ts, int64_t dur) noexcept {
  const int f = --ts.frames;
  const int64_t child = f < kMaxDepth ? ts.frame[f].child_ns : 0;
  if (f > 0 && f - 1 < kMaxDepth) ts.frame[f - 1].child_ns += dur;
  return child;
}

bool live(uint32_t session) {
  return enabled() && g_session.load(std::memory_order_relaxed) == session;
}

}  // namespace

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool start(int64_t max_events_per_thread) {
  ThreadState& ts = t_state;
  // Register the calling thread and give it a first chunk now, outside the timed region.
  if (Buffer* b = ts.buf ? ts.buf : register_thread(ts)) chunk(b, 0);
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (enabled()) return false;
  const int64_t cap = max_events_per_thread < 1 ? 1 : max_events_per_thread;
  g_capacity.store(cap < kChunk * kMaxChunks ? cap : kChunk * kMaxChunks, std::memory_order_relaxed);
  g_session.fetch_add(1, std::memory_order_release);
  r.start_ns = now_ns();
  g_enabled.store(true, std::memory_order_release);
  return true;
}

void stop() {
  std::lock_guard<std::mutex> lock(registry().mutex);
  g_enabled.store(false, std::memory_order_release);
}

int64_t session_start_ns() {
  std::lock_guard<std::mutex> lock(registry().mutex);
  return registry().start_ns;
}

std::vector<ThreadEvents> collect() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const uint32_t session = g_session.load(std::memory_order_relaxed);
  std::vector<ThreadEvents> out;
  for (Buffer* b : r.buffers) {
    if (session == 0 || b->session.load(std::memory_order_acquire) != session) continue;
    const int64_t n = b->count.load(std::memory_order_acquire);
    ThreadEvents t{b->os_tid, b->index, b->dropped.load(std::memory_order_relaxed), {}};
    t.events.reserve((size_t)n);
    for (int64_t i = 0; i < n; ++i) t.events.push_back(b->chunks[i / kChunk][i % kChunk]);
    out.push_back(std::move(t));
  }
  return out;
}

const char* intern(const char* name) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.names.find(name);
  if (it != r.names.end()) return it->c_str();
  if (r.names.size() >= kMaxNames) return "(too many distinct span names)";
  return r.names.insert(name).first->c_str();
}

int64_t span_begin(const char* name) {
  if (!enabled()) return -1;
  ThreadState& ts = t_state;
  // Spans of an earlier session left open (entered, never exited) can never be recorded: they are
  // forgotten, so they do not take this thread's frames forever. Kernel scopes always close.
  const uint32_t session = g_session.load(std::memory_order_relaxed);
  while (ts.frames > 0 && ts.frames <= kMaxDepth && ts.frame[ts.frames - 1].name &&
         ts.frame[ts.frames - 1].session != session)
    --ts.frames;
  if (ts.frames >= kMaxDepth) {  // too deep to track: not recorded, but counted, so stop() says so
    if (Buffer* b = session_buffer(ts)) b->dropped.fetch_add(1, std::memory_order_relaxed);
    return -1;
  }
  Frame& f = ts.frame[ts.frames++];
  f.child_ns = 0;
  f.name = name;
  f.id = g_span_id.fetch_add(1, std::memory_order_relaxed) + 1;
  f.session = g_session.load(std::memory_order_relaxed);
  f.start_ns = now_ns();
  return (int64_t)f.id;
}

bool span_end(int64_t token) {
  const int64_t t = now_ns();
  ThreadState& ts = t_state;
  // The span's frame on this thread; spans opened inside it and never closed
  // end here too. A kernel scope open above it (impossible from Python) or a
  // token from another thread leaves everything as it is.
  if (token <= 0 || ts.frames > kMaxDepth) return false;
  int f = ts.frames - 1;
  while (f >= 0 && ts.frame[f].name && ts.frame[f].id != (uint64_t)token) --f;
  if (f < 0 || !ts.frame[f].name) return false;
  while (ts.frames > f) {
    const Frame& fr = ts.frame[ts.frames - 1];
    const int64_t dur = t - fr.start_ns;
    const int64_t child = pop_frame(ts, dur);
    if (live(fr.session)) {
      Event e{fr.name, fr.start_ns, dur, dur - child, 0.0, 0.0, {-1, -1, -1}, ts.kernel_depth, 1};
      record(ts, e);
    }
  }
  return true;
}

void Scope::begin(double flops, double bytes, int64_t d0, int64_t d1, int64_t d2) noexcept {
  ThreadState& ts = t_state;
  thread_ = &ts;
  session_ = g_session.load(std::memory_order_relaxed);
  flops_ = flops;
  bytes_ = bytes;
  dims_[0] = d0;
  dims_[1] = d1;
  dims_[2] = d2;
  if (ts.frames < kMaxDepth) {
    ts.frame[ts.frames].child_ns = 0;
    ts.frame[ts.frames].name = nullptr;
  }
  ++ts.frames;
  ++ts.kernel_depth;
  start_ = now_ns();
}

void Scope::end() noexcept {
  const int64_t t = now_ns();
  ThreadState& ts = *static_cast<ThreadState*>(thread_);
  const int64_t dur = t - start_;
  const int64_t child = pop_frame(ts, dur);
  const int depth = --ts.kernel_depth;
  if (!live(session_)) return;
  Event e{name_, start_, dur, dur - child, flops_, bytes_, {dims_[0], dims_[1], dims_[2]}, depth, 0};
  record(ts, e);
}

// ---- cost models (see profiler.h)
double act_flops(ActParams act, bool backward) {
  if (act.kind == kLinear) return 0.0;
  if (act.kind == kSoftmax) return backward ? 9.0 : 5.0;
  return backward ? 2.0 : 1.0;
}

double optimizer_flops(const OptimizerArgs& args, const std::vector<cpu::ParamBuffer>& buffers, bool norm_clip) {
  double total = 0;
  for (const auto& b : buffers) {
    double per = 2;  // sgd: w -= lr * g
    if (args.kind == kSgd && b.s0) per = 4;  // m = momentum m - lr g ; w += m
    if (args.kind == kAdam) per = 12;        // m: 3, v: 4, w -= alpha m / (sqrt(v) + eps): 5
    if (args.kind == kRmsprop) per = 9;      // v: 4, + eps: 1, w -= lr g / sqrt(den): 4
    if (args.kind == kAdagrad) per = 7;      // acc += g^2: 2, w -= lr g / sqrt(acc + eps): 5
    if (args.kind == kAdamax) per = 10;      // m: 3, u: 3, w -= alpha m / (u + eps): 4
    if (args.kind == kLion) per = 9;         // sign(b1 m + c1 g): 4, w -= lr sign: 2, m = b2 m + c2 g: 3
    total += (double)b.n * (per + (norm_clip ? 2 : 0));
  }
  return total;
}

double optimizer_bytes(const std::vector<cpu::ParamBuffer>& buffers, bool norm_clip) {
  double total = 0;
  for (const auto& b : buffers) {
    const int states = (b.s0 != nullptr) + (b.s1 != nullptr) + (b.s2 != nullptr);
    total += 4.0 * (double)b.n * ((norm_clip ? 2 : 1) + 2 + 2 * states);
  }
  return total;
}

int64_t total_elements(const std::vector<cpu::ParamBuffer>& buffers) {
  int64_t n = 0;
  for (const auto& b : buffers) n += b.n;
  return n;
}

}  // namespace prof
}  // namespace gradsmith
