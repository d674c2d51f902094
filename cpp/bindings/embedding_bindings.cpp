// _core's embedding kernels (cpu/embedding.cpp) for gradsmith.ops and the layer-by-layer path: ids are int64
// (n,), checked here to lie in [0, vocab) before any table row is read.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "bindings/array_checks.h"
#include "cpu/ops.h"

namespace py = pybind11;
namespace cpu = gradsmith::cpu;
using i64 = int64_t;

namespace {

using namespace gradsmith::bindings;

const int64_t* checked_ids(const py::array& ids, i64 vocab) {
  if (ids.ndim() != 1) throw py::value_error("ids: expected a 1-D array, got shape " + shape_str(ids));
  const int64_t* p = data_of<int64_t>(ids, "ids", false);
  for (i64 i = 0; i < (i64)ids.shape(0); ++i)
    if (p[i] < 0 || p[i] >= vocab)
      throw py::value_error("embedding: id " + std::to_string(p[i]) + " at index " + std::to_string(i) +
                            " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  return p;
}

py::array_t<float> embedding_forward(const py::array& ids, const py::array& table) {
  const i64 vocab = dim(table, "table", 0), width = dim(table, "table", 1);
  const int64_t* I = checked_ids(ids, vocab);
  const float* T = data_of<float>(table, "table", false);
  const i64 n = ids.shape(0);
  py::array_t<float> y(std::vector<py::ssize_t>{(py::ssize_t)n, (py::ssize_t)width});
  float* Y = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::embedding_forward(I, T, Y, n, width);
  }
  return y;
}

void embedding_backward(const py::array& ids, const py::array& dy, const py::array& dtable) {
  const i64 vocab = dim(dtable, "dtable_out", 0), width = dim(dtable, "dtable_out", 1);
  const int64_t* I = checked_ids(ids, vocab);
  const i64 n = ids.shape(0);
  const float* DY = in2(dy, "dy", n, width);
  float* DT = data_of<float>(dtable, "dtable_out", true);
  py::gil_scoped_release nogil;
  cpu::embedding_backward(I, DY, DT, nullptr, n, vocab, width);
}

}  // namespace

void bind_embedding(py::module_& m) {
  m.def("embedding_forward", &embedding_forward, py::arg("ids"), py::arg("table"),
        "y (n, dim) = table[ids]: ids int64 (n,) in [0, vocab), table float32 (vocab, dim)");
  m.def("embedding_backward", &embedding_backward, py::arg("ids"), py::arg("dy"), py::arg("dtable_out"),
        "dtable_out[v] = sum of dy[i] over ids[i] == v, in increasing i (every row written; deterministic)");
}
