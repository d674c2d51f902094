// gradsmith._core's profiler functions, used by gradsmith.profiler:
//
//   profiler_start(max_events_per_thread) -> bool   False: a session is already running
//   profiler_stop()
//   profiler_enabled() -> bool
//   profiler_span_begin(name) -> token               -1 while the profiler is off
//   profiler_span_end(token) -> bool
//   profiler_events() -> dict of columns             the current (or last) session's events
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "cpu/profiler.h"

namespace py = pybind11;
namespace prof = gradsmith::prof;

namespace {

// Every event of the session as NumPy columns (one row per event, threads one
// after another): name (index into names), kind (0 kernel, 1 span), tid (OS
// thread id), thread (small per-thread index), start_ns (since the session's
// start), dur_ns, self_ns, flops, bytes, dims (n, 3; -1 unused), depth; plus
// dropped (events lost to full buffers) and threads (index, tid, dropped).
py::dict events() {
  std::vector<prof::ThreadEvents> threads;
  int64_t t0;
  {
    py::gil_scoped_release nogil;
    threads = prof::collect();
    t0 = prof::session_start_ns();
  }
  size_t n = 0;
  for (const auto& t : threads) n += t.events.size();
  py::array_t<int32_t> name(n), kind(n), thread(n), depth(n);
  py::array_t<int64_t> tid(n), start(n), dur(n), self(n), dims({(py::ssize_t)n, (py::ssize_t)3});
  py::array_t<double> flops(n), bytes(n);
  auto name_ = name.mutable_unchecked<1>(), kind_ = kind.mutable_unchecked<1>();
  auto thread_ = thread.mutable_unchecked<1>(), depth_ = depth.mutable_unchecked<1>();
  auto tid_ = tid.mutable_unchecked<1>(), start_ = start.mutable_unchecked<1>(), dur_ = dur.mutable_unchecked<1>(),
       self_ = self.mutable_unchecked<1>();
  auto dims_ = dims.mutable_unchecked<2>();
  auto flops_ = flops.mutable_unchecked<1>(), bytes_ = bytes.mutable_unchecked<1>();
  std::unordered_map<const char*, int32_t> ids;
  py::list names, thread_list;
  int64_t dropped = 0;
  size_t i = 0;
  for (const auto& t : threads) {
    dropped += t.dropped;
    thread_list.append(py::make_tuple(t.index, t.os_tid, t.dropped));
    for (const prof::Event& e : t.events) {
      auto it = ids.find(e.name);
      if (it == ids.end()) {
        it = ids.emplace(e.name, (int32_t)ids.size()).first;
        names.append(py::str(e.name));
      }
      name_(i) = it->second;
      kind_(i) = e.kind;
      thread_(i) = t.index;
      depth_(i) = e.depth;
      tid_(i) = t.os_tid;
      start_(i) = e.start_ns - t0;
      dur_(i) = e.dur_ns;
      self_(i) = e.self_ns;
      flops_(i) = e.flops;
      bytes_(i) = e.bytes;
      for (int d = 0; d < 3; ++d) dims_(i, d) = e.dims[d];
      ++i;
    }
  }
  py::dict out;
  out["names"] = names;
  out["name"] = name;
  out["kind"] = kind;
  out["tid"] = tid;
  out["thread"] = thread;
  out["start_ns"] = start;
  out["dur_ns"] = dur;
  out["self_ns"] = self;
  out["flops"] = flops;
  out["bytes"] = bytes;
  out["dims"] = dims;
  out["depth"] = depth;
  out["dropped"] = dropped;
  out["threads"] = thread_list;
  return out;
}

}  // namespace

void bind_profiler(py::module_& m) {
  m.def("profiler_start", [](int64_t max_events) {
    if (max_events < 1) throw py::value_error("max_events must be >= 1, got " + std::to_string(max_events));
    return prof::start(max_events);
  }, py::arg("max_events_per_thread"));
  m.def("profiler_stop", &prof::stop);
  m.def("profiler_enabled", &prof::enabled);
  m.def("profiler_span_begin", [](const py::str& name) -> int64_t {
    if (!prof::enabled()) return -1;
    return prof::span_begin(prof::intern(std::string(name).c_str()));
  }, py::arg("name"));
  m.def("profiler_span_end", &prof::span_end, py::arg("token"));
  m.def("profiler_events", &events);
}
