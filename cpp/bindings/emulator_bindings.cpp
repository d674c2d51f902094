// _core's functions of the emulated CUDA build only (GRADSMITH_CUDA=EMULATE): the emulator's settings and
// the test-only kernels with planted bugs (tests/cuda/test_emulator.py).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cuda/emulator/emulator.h"
#include "cuda/emulator/emulator_tests.h"

namespace py = pybind11;

void bind_emulator(py::module_& m) {
  m.def("cuda_emulator_settings", [] {
    const gradsmith_emu::Settings s = gradsmith_emu::settings();
    py::dict d;
    d["shuffle_seed"] = s.shuffle_seed;
    d["poison"] = s.poison;
    d["memory_bytes"] = s.memory_bytes;
    d["defer_streams"] = s.defer_streams;
    return d;
  });
  m.def("cuda_emulator_configure", [](const py::object& shuffle_seed, const py::object& poison,
                                      const py::object& memory_bytes, const py::object& defer_streams) {
    gradsmith_emu::Settings s = gradsmith_emu::settings();
    if (!shuffle_seed.is_none()) s.shuffle_seed = shuffle_seed.cast<uint64_t>();
    if (!poison.is_none()) s.poison = poison.cast<bool>();
    if (!memory_bytes.is_none()) s.memory_bytes = memory_bytes.cast<size_t>();
    if (!defer_streams.is_none()) s.defer_streams = defer_streams.cast<bool>();
    gradsmith_emu::configure(s);
  }, py::arg("shuffle_seed") = py::none(), py::arg("poison") = py::none(), py::arg("memory_bytes") = py::none(),
     py::arg("defer_streams") = py::none(),
     "Change the emulator's settings (None keeps one); see cpp/cuda/emulator/emulator.h.");
  m.def("cuda_emulator_launches", &gradsmith_emu::launches);
  m.def("cuda_emulator_test_kernel", [](const std::string& name, const std::vector<float>& x) {
    py::gil_scoped_release nogil;
    return gradsmith::cuda::run_emulator_test_kernel(name, x);
  }, py::arg("name"), py::arg("x"), "Run a test-only kernel with a planted bug (cpp/cuda/emulator/test_kernels.cu).");
}
