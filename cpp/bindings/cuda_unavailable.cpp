// Stands in for cuda_bindings.cpp in a build without a CUDA toolkit: the
// queries answer "not available" with the reason, and nothing else exists.
#include <pybind11/pybind11.h>

#include <string>

namespace py = pybind11;

void bind_cuda(py::module_& m) {
  m.attr("cuda_built") = false;
  m.attr("cuda_emulated") = false;
  m.def("cuda_available", [] { return false; });
  m.def("cuda_unavailable_reason", [] {
    return std::string("gradsmith was built without CUDA: no CUDA toolkit was found when it was built "
                       "(see the README's GPU section)");
  });
  m.def("cuda_device_count", [] { return 0; });
}
