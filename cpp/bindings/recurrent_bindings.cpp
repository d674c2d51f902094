// _core's recurrent kernels (cpu/recurrent.cpp) for gradsmith.ops and the recurrent layers' layer-by-layer path
// and generation. Arrays are float32, C-contiguous; every shape is checked against the spec it implies.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "bindings/array_checks.h"
#include "cpu/ops.h"
#include "math/recurrent.h"

namespace py = pybind11;
namespace cpu = gradsmith::cpu;
namespace math = gradsmith::math;
using i64 = int64_t;

namespace {

using namespace gradsmith::bindings;

py::array_t<float> empty(std::vector<py::ssize_t> shape) { return py::array_t<float>(shape); }

cpu::RnnSpec rnn_spec(int cell, bool reset_after, bool go_backwards, const py::array& x, const py::array& w,
                      const py::array& u) {
  if (cell < 0 || cell > 2) throw py::value_error("rnn: unknown cell kind " + std::to_string(cell));
  if (x.ndim() != 3) throw py::value_error("rnn: x must be (batch, steps, features), got shape " + shape_str(x));
  if (u.ndim() != 2) throw py::value_error("rnn: recurrent_kernel must be 2-D, got shape " + shape_str(u));
  cpu::RnnSpec s{cell, cell == math::kCellGRU && reset_after, go_backwards, x.shape(0), x.shape(1), x.shape(2),
                 u.shape(0)};
  const i64 GU = math::cell_gates(cell) * s.units;
  if (s.units < 1) throw py::value_error("rnn: units must be at least 1");
  if (s.steps < 1) throw py::value_error("rnn: the input needs at least one time step, got shape " + shape_str(x));
  expect_shape(w, "kernel", {s.in, GU});
  expect_shape(u, "recurrent_kernel", {s.units, GU});
  return s;
}

const float* optional_state(const py::object& o, const char* name, const cpu::RnnSpec& s) {
  if (o.is_none()) return nullptr;
  const py::array a = array_arg(o, name);
  expect_shape(a, name, {s.batch, s.units});
  return data_of<float>(a, name, false);
}

py::tuple rnn_forward(int cell, bool reset_after, bool go_backwards, const py::array& x, const py::array& w,
                      const py::array& u, const py::object& bias, const py::object& h0, const py::object& c0,
                      bool training) {
  const cpu::RnnSpec s = rnn_spec(cell, reset_after, go_backwards, x, w, u);
  const i64 GU = math::cell_gates(cell) * s.units;
  const float* B = nullptr;
  if (!bias.is_none()) {
    const py::array b = array_arg(bias, "bias");
    if (s.reset_after) expect_shape(b, "bias", {2, GU});
    else expect_shape(b, "bias", {GU});
    B = data_of<float>(b, "bias", false);
  }
  const float* H0 = optional_state(h0, "initial h", s);  // None: zeros
  const float* C0 = optional_state(c0, "initial c", s);
  const float* X = data_of<float>(x, "x", false);
  const float* W = data_of<float>(w, "kernel", false);
  const float* U = data_of<float>(u, "recurrent_kernel", false);
  py::array_t<float> hseq = empty({s.batch, s.steps, s.units}), gates = empty({s.batch, s.steps, GU});
  py::object extra = py::none(), hprev = py::none();
  float* E = nullptr;
  float* HP = nullptr;
  if (cell != math::kCellSimpleRNN) {
    py::array_t<float> a = empty({s.batch, s.steps, s.units});
    E = a.mutable_data();
    extra = a;
  }
  if (training) {
    py::array_t<float> a = empty({s.batch, s.steps, s.units});
    HP = a.mutable_data();
    hprev = a;
  }
  float* HS = hseq.mutable_data();
  float* G = gates.mutable_data();
  std::vector<float> scratch((size_t)math::rnn_forward_scratch(s));
  {
    TrainingCall call;
    cpu::rnn_forward(s, X, W, U, B, H0, C0, HS, E, G, HP, scratch.data());
  }
  return py::make_tuple(hseq, extra, gates, hprev);
}

py::object rnn_backward(int cell, bool reset_after, bool go_backwards, const py::array& x, const py::array& w,
                        const py::array& u, const py::object& c0, const py::object& dy_seq, const py::object& dy_last,
                        const py::array& gates, const py::array& hprev, const py::object& extra, bool need_dx,
                        const py::array& dw, const py::array& du, const py::object& db) {
  const cpu::RnnSpec s = rnn_spec(cell, reset_after, go_backwards, x, w, u);
  const i64 GU = math::cell_gates(cell) * s.units;
  const float* C0 = optional_state(c0, "initial c", s);
  const float* DYS = nullptr;
  const float* DYL = nullptr;
  if (!dy_seq.is_none()) {
    const py::array a = array_arg(dy_seq, "dy_seq");
    expect_shape(a, "dy_seq", {s.batch, s.steps, s.units});
    DYS = data_of<float>(a, "dy_seq", false);
  }
  DYL = optional_state(dy_last, "dy_last", s);
  expect_shape(gates, "gates", {s.batch, s.steps, GU});
  expect_shape(hprev, "hprev", {s.batch, s.steps, s.units});
  const float* E = nullptr;
  if (cell != math::kCellSimpleRNN) {
    if (extra.is_none()) throw py::value_error("rnn: the saved per-step values are missing");
    const py::array a = array_arg(extra, "extra");
    expect_shape(a, "extra", {s.batch, s.steps, s.units});
    E = data_of<float>(a, "extra", false);
  }
  expect_shape(dw, "dkernel_out", {s.in, GU});
  expect_shape(du, "drecurrent_kernel_out", {s.units, GU});
  float* DB = nullptr;
  if (!db.is_none()) {
    const py::array a = array_arg(db, "dbias_out");
    if (s.reset_after) expect_shape(a, "dbias_out", {2, GU});
    else expect_shape(a, "dbias_out", {GU});
    DB = data_of<float>(a, "dbias_out", true);
  }
  const float* X = data_of<float>(x, "x", false);
  const float* W = data_of<float>(w, "kernel", false);
  const float* U = data_of<float>(u, "recurrent_kernel", false);
  float* G = data_of<float>(gates, "gates", true);
  const float* HP = data_of<float>(hprev, "hprev", false);
  float* DW = data_of<float>(dw, "dkernel_out", true);
  float* DU = data_of<float>(du, "drecurrent_kernel_out", true);
  py::object dx = py::none();
  float* DX = nullptr;
  if (need_dx) {
    py::array_t<float> a = empty({s.batch, s.steps, s.in});
    DX = a.mutable_data();
    dx = a;
  }
  std::vector<float> scratch((size_t)math::rnn_backward_scratch(s));
  {
    TrainingCall call;
    cpu::rnn_backward(s, X, W, U, C0, DYS, DYL, G, HP, E, scratch.data(), DX, DW, DU, DB);
  }
  return dx;
}

}  // namespace

void bind_recurrent(py::module_& m) {
  m.def("rnn_forward", &rnn_forward, py::arg("cell"), py::arg("reset_after"), py::arg("go_backwards"), py::arg("x"),
        py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias"), py::arg("h0"), py::arg("c0"),
        py::arg("training"),
        "(hseq, extra or None, gates, hprev or None): h after each step (processing order) and what backward needs");
  m.def("rnn_backward", &rnn_backward, py::arg("cell"), py::arg("reset_after"), py::arg("go_backwards"),
        py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("c0"), py::arg("dy_seq"),
        py::arg("dy_last"), py::arg("gates"), py::arg("hprev"), py::arg("extra"), py::arg("need_dx"),
        py::arg("dkernel_out"), py::arg("drecurrent_kernel_out"), py::arg("dbias_out"),
        "dx or None; writes the weight gradients (gates is overwritten)");
}
