// Argument checks shared by the binding files: every array that reaches a
// kernel is checked here for dtype, C-contiguity, writability and exact shape,
// so no call from Python can read or write out of bounds.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <utility>
#include <vector>

#include "cpu/denormals.h"
#include "math/elementwise.h"

namespace gradsmith {
namespace bindings {

namespace py = pybind11;
using i64 = int64_t;

// How a training kernel (an optimizer step, the compiled training step) runs:
// without the GIL and with denormals flushed (cpu/denormals.h), the caller's
// floating-point state restored after. The other kernels keep IEEE denormals,
// so gradsmith.ops matches NumPy even there.
struct TrainingCall {
  py::gil_scoped_release nogil;
  gradsmith::cpu::DenormalsAreZero daz;
};

inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s += std::to_string(a.shape(d)) + (a.ndim() == 1 || d + 1 < a.ndim() ? "," : "");
  return s + ")";
}

// True when a's dtype is T's (native byte order). Compared by value, not by identity: an unpickled or
// otherwise rebuilt array has an equal dtype object that is not NumPy's cached one.
template <class T>
inline bool has_dtype(const py::array& a) {
  const py::dtype want = py::dtype::of<T>();
  const py::dtype got = a.dtype();
  return got.is(want) || py::detail::npy_api::get().PyArray_EquivTypes_(got.ptr(), want.ptr());
}

// Checks an array argument and returns its data pointer.
template <class T>
T* data_of(const py::array& a, const char* name, bool writable) {
  if (!has_dtype<T>(a))
    throw py::type_error(std::string(name) + ": expected dtype " + std::string(py::str(py::dtype::of<T>())) +
                         ", got " + std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style)) throw py::value_error(std::string(name) + ": array must be C-contiguous");
  if (writable && !a.writeable()) throw py::value_error(std::string(name) + ": array is read-only");
  return static_cast<T*>(const_cast<void*>(a.data()));
}

inline void expect_shape(const py::array& a, const char* name, std::vector<i64> shape) {
  bool ok = a.ndim() == (py::ssize_t)shape.size();
  for (size_t d = 0; ok && d < shape.size(); ++d) ok = a.shape(d) == shape[d];
  if (!ok) {
    py::array_t<float> want(std::vector<py::ssize_t>(shape.begin(), shape.end()));
    throw py::value_error(std::string(name) + ": expected shape " + shape_str(want) + ", got " + shape_str(a));
  }
}

// An optional array argument (None allowed by the caller) that must be an ndarray.
inline py::array array_arg(const py::object& o, const char* name) {
  if (!py::isinstance<py::array>(o))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray, got " +
                         std::string(py::str(py::type::of(o).attr("__name__"))));
  return py::reinterpret_borrow<py::array>(o);
}

// A list or tuple of ndarrays.
inline std::vector<py::array> array_list(const py::object& o, const char* name) {
  if (!py::isinstance<py::list>(o) && !py::isinstance<py::tuple>(o))
    throw py::type_error(std::string(name) + ": expected a list of numpy.ndarray");
  std::vector<py::array> out;
  for (const py::handle item : o) out.push_back(array_arg(py::reinterpret_borrow<py::object>(item), name));
  return out;
}

inline const float* in2(const py::array& a, const char* name, i64 rows, i64 cols) {
  expect_shape(a, name, {rows, cols});
  return data_of<float>(a, name, false);
}
inline float* out2(const py::array& a, const char* name, i64 rows, i64 cols) {
  expect_shape(a, name, {rows, cols});
  return data_of<float>(a, name, true);
}
inline i64 dim(const py::array& a, const char* name, int axis) {
  if (a.ndim() != 2) throw py::value_error(std::string(name) + ": expected a 2-D array, got shape " + shape_str(a));
  return a.shape(axis);
}

// (rows, cols) of an array seen as rows of its last axis.
inline std::pair<i64, i64> rows_cols(const py::array& a) {
  if (a.ndim() == 0) return {1, 1};
  const i64 cols = a.shape(a.ndim() - 1);
  return {cols == 0 ? 0 : (i64)a.size() / cols, cols};
}

inline void same_layout(const py::array& a, const py::array& b, const char* name_a, const char* name_b) {
  bool ok = a.ndim() == b.ndim();
  for (py::ssize_t d = 0; ok && d < a.ndim(); ++d) ok = a.shape(d) == b.shape(d);
  if (!ok)
    throw py::value_error(std::string(name_a) + " and " + name_b + " must have the same shape, got " + shape_str(a) +
                          " and " + shape_str(b));
}

inline gradsmith::ActParams activation(int kind, float param) {
  if (kind < 0 || kind >= gradsmith::kNumActivations) throw py::value_error("unknown activation kind");
  return {kind, param};
}

}  // namespace bindings
}  // namespace gradsmith
