// _core functions behind gradsmith.machine: the measured FLOP and copy roofs
// (cpp/cpu/machine_peak.h). Python takes medians and caches the result.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "cpu/machine_peak.h"

namespace py = pybind11;
namespace cpu = gradsmith::cpu;

void bind_bench(py::module_& m) {
  m.def(
      "peak_flops_run",
      [](int64_t iters) {
        if (iters < 1) throw py::value_error("iters must be >= 1, got " + std::to_string(iters));
        cpu::PeakRun r;
        {
          py::gil_scoped_release nogil;
          r = cpu::fma_peak_run(iters);
        }
        return py::make_tuple(r.work, r.seconds);
      },
      py::arg("iters"),
      "Run `iters` steps of independent FMA chains of the CPU path in use on every pool thread at once. "
      "Returns (flops, seconds).");
  m.def("copy_buffer_bytes", &cpu::copy_buffer_bytes,
        "Default copy buffer size: max(256 MiB, last-level cache), in whole chunks.");
  m.def(
      "copy_bandwidth_runs",
      [](int64_t bytes, int repeats) {
        if (bytes < 1 || repeats < 1) throw py::value_error("bytes and repeats must be >= 1");
        std::vector<double> seconds((size_t)repeats);
        double counted;
        {
          py::gil_scoped_release nogil;
          counted = cpu::copy_bandwidth_runs(bytes, repeats, seconds.data());
        }
        return py::make_tuple(counted, seconds);
      },
      py::arg("bytes"), py::arg("repeats"),
      "Copy a `bytes` buffer into another `repeats` times on every pool thread (non-temporal stores). "
      "Returns (bytes counted per copy = read + write, [seconds per copy]).");
}
