// _core's convolution and pooling kernels (cpu/conv.cpp, cpu/pool.cpp) for gradsmith.ops and the layers'
// layer-by-layer path. Images are NHWC float32; the geometry is checked by math::conv_geometry /
// pool_geometry, the same functions the compiled layers use, and every array against the shape it implies.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "bindings/array_checks.h"
#include "cpu/ops.h"

namespace py = pybind11;
namespace cpu = gradsmith::cpu;
namespace math = gradsmith::math;
using i64 = int64_t;
using gradsmith::ActParams;

namespace {

using namespace gradsmith::bindings;

i64 dim4(const py::array& a, const char* name, int axis) {
  if (a.ndim() != 4) throw py::value_error(std::string(name) + ": expected a 4-D array, got shape " + shape_str(a));
  return a.shape(axis);
}

std::pair<i64, i64> pair_arg(const py::tuple& t, const char* name) {
  if (t.size() != 2) throw py::value_error(std::string(name) + ": expected two values");
  return {t[0].cast<i64>(), t[1].cast<i64>()};
}

py::array_t<float> empty4(i64 a, i64 b, i64 c, i64 d) { return py::array_t<float>(std::vector<py::ssize_t>{a, b, c, d}); }

math::ConvGeometry conv_geometry(const py::array& x, const py::array& w, const py::tuple& strides,
                                 const py::tuple& dilation, int padding) {
  const i64 kh = dim4(w, "kernel", 0), kw = dim4(w, "kernel", 1), filters = dim4(w, "kernel", 3);
  const auto s = pair_arg(strides, "strides"), d = pair_arg(dilation, "dilation_rate");
  if (dim4(x, "x", 3) != w.shape(2))
    throw py::value_error("conv: x has " + std::to_string(x.shape(3)) + " channels, the kernel " +
                          std::to_string(w.shape(2)));
  math::ConvGeometry g;
  const std::string why = math::conv_geometry(x.shape(1), x.shape(2), x.shape(3), filters, kh, kw, s.first, s.second,
                                              d.first, d.second, padding, &g);
  if (!why.empty()) throw py::value_error("conv: " + why + " (x " + shape_str(x) + ", kernel " + shape_str(w) + ")");
  return g;
}

py::tuple conv_forward(const py::array& x, const py::array& w, const py::object& bias, int act_kind, float act_param,
                       const py::tuple& strides, const py::tuple& dilation, int padding, bool keep_z) {
  const math::ConvGeometry g = conv_geometry(x, w, strides, dilation, padding);
  const ActParams act = activation(act_kind, act_param);
  const i64 n = x.shape(0);
  const float* X = data_of<float>(x, "x", false);
  const float* W = data_of<float>(w, "kernel", false);
  const float* B = nullptr;
  if (!bias.is_none()) {
    const py::array b = array_arg(bias, "bias");
    expect_shape(b, "bias", {g.out_c});
    B = data_of<float>(b, "bias", false);
  }
  py::array_t<float> y = empty4(n, g.out_h, g.out_w, g.out_c);
  py::object z = py::none();
  float* Z = nullptr;
  if (keep_z) {
    py::array_t<float> za = empty4(n, g.out_h, g.out_w, g.out_c);
    Z = za.mutable_data();
    z = za;
  }
  float* Y = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::conv_forward(g, X, W, B, act, Y, Z, n);
  }
  return py::make_tuple(y, z);
}

py::object conv_backward(const py::array& dy, const py::array& x, const py::array& w, const py::object& z,
                         int act_kind, float act_param, const py::tuple& strides, const py::tuple& dilation,
                         int padding, bool need_dx, const py::array& dw, const py::object& db) {
  const math::ConvGeometry g = conv_geometry(x, w, strides, dilation, padding);
  const ActParams act = activation(act_kind, act_param);
  const i64 n = x.shape(0);
  expect_shape(dy, "dy", {n, g.out_h, g.out_w, g.out_c});
  const float* DY = data_of<float>(dy, "dy", false);
  const float* X = data_of<float>(x, "x", false);
  const float* W = data_of<float>(w, "kernel", false);
  const float* Z = DY;
  if (act.kind != gradsmith::kLinear) {
    if (z.is_none()) throw py::value_error("conv: the pre-activation z is needed for a non-linear activation");
    const py::array za = array_arg(z, "z");
    expect_shape(za, "z", {n, g.out_h, g.out_w, g.out_c});
    Z = data_of<float>(za, "z", false);
  }
  expect_shape(dw, "dkernel_out", {g.k_h, g.k_w, g.in_c, g.out_c});
  float* DW = data_of<float>(dw, "dkernel_out", true);
  float* DB = nullptr;
  if (!db.is_none()) {
    const py::array b = array_arg(db, "dbias_out");
    expect_shape(b, "dbias_out", {g.out_c});
    DB = data_of<float>(b, "dbias_out", true);
  }
  py::object dx = py::none();
  float* DX = nullptr;
  if (need_dx) {
    py::array_t<float> a = empty4(n, g.in_h, g.in_w, g.in_c);
    DX = a.mutable_data();
    dx = a;
  }
  std::vector<float> scratch((size_t)cpu::conv_backward_scratch(g, n));
  {
    py::gil_scoped_release nogil;
    cpu::conv_backward(g, DY, X, W, Z, act, scratch.data(), DX, DW, DB, n);
  }
  return dx;
}

math::PoolGeometry pool_geometry(i64 in_h, i64 in_w, i64 channels, int mode, bool global, const py::tuple& pool,
                                 const py::tuple& strides, int padding) {
  const auto p = pair_arg(pool, "pool_size"), s = pair_arg(strides, "strides");
  math::PoolGeometry g;
  const std::string why = math::pool_geometry(in_h, in_w, channels, mode, global, p.first, p.second, s.first,
                                              s.second, padding, &g);
  if (!why.empty())
    throw py::value_error("pooling: " + why + " (images " + std::to_string(in_h) + "x" + std::to_string(in_w) + ")");
  return g;
}

py::tuple pool_forward(const py::array& x, int mode, bool global, const py::tuple& pool, const py::tuple& strides,
                       int padding, bool keep_arg) {
  const math::PoolGeometry g = pool_geometry(dim4(x, "x", 1), x.shape(2), x.shape(3), mode, global, pool, strides,
                                             padding);
  const i64 n = x.shape(0);
  const float* X = data_of<float>(x, "x", false);
  py::array_t<float> y = empty4(n, g.out_h, g.out_w, g.channels);
  py::object arg = py::none();
  float* A = nullptr;
  if (keep_arg && mode == math::kPoolMax) {
    py::array_t<float> a = empty4(n, g.out_h, g.out_w, g.channels);
    A = a.mutable_data();
    arg = a;
  }
  float* Y = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::pool_forward(g, X, Y, A, n);
  }
  return py::make_tuple(y, arg);
}

py::array pool_backward(const py::array& dy, const py::object& arg, i64 in_h, i64 in_w, int mode, bool global,
                        const py::tuple& pool, const py::tuple& strides, int padding) {
  const math::PoolGeometry g = pool_geometry(in_h, in_w, dim4(dy, "dy", 3), mode, global, pool, strides, padding);
  const i64 n = dy.shape(0);
  expect_shape(dy, "dy", {n, g.out_h, g.out_w, g.channels});
  const float* DY = data_of<float>(dy, "dy", false);
  const float* A = nullptr;
  if (mode == math::kPoolMax) {
    if (arg.is_none()) throw py::value_error("max pooling's backward needs the positions of the maxima");
    const py::array a = array_arg(arg, "arg");
    expect_shape(a, "arg", {n, g.out_h, g.out_w, g.channels});
    A = data_of<float>(a, "arg", false);
    // Positions come from pool_forward; a foreign array must still point inside each image.
    const float* end = A + a.size();
    for (const float* p = A; p < end; ++p)
      if (!(*p >= 0.f && *p < (float)(in_h * in_w)))
        throw py::value_error("arg: positions must lie inside the image");
  }
  py::array_t<float> dx = empty4(n, in_h, in_w, g.channels);
  float* DX = dx.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::pool_backward(g, DY, A, DX, n);
  }
  return dx;
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def("conv_forward", &conv_forward, py::arg("x"), py::arg("kernel"), py::arg("bias"), py::arg("act_kind"),
        py::arg("act_param"), py::arg("strides"), py::arg("dilation_rate"), py::arg("padding"), py::arg("keep_z"),
        "(y, z or None): NHWC convolution, z = conv(x, kernel) + bias, y = f(z)");
  m.def("conv_backward", &conv_backward, py::arg("dy"), py::arg("x"), py::arg("kernel"), py::arg("z"),
        py::arg("act_kind"), py::arg("act_param"), py::arg("strides"), py::arg("dilation_rate"), py::arg("padding"),
        py::arg("need_dx"), py::arg("dkernel_out"), py::arg("dbias_out"),
        "dx or None; writes dkernel_out and dbias_out");
  m.def("pool_forward", &pool_forward, py::arg("x"), py::arg("mode"), py::arg("global_pool"), py::arg("pool_size"),
        py::arg("strides"), py::arg("padding"), py::arg("keep_arg"), "(y, arg or None): NHWC max/average pooling");
  m.def("pool_backward", &pool_backward, py::arg("dy"), py::arg("arg"), py::arg("in_h"), py::arg("in_w"),
        py::arg("mode"), py::arg("global_pool"), py::arg("pool_size"), py::arg("strides"), py::arg("padding"),
        "dx of pool_forward");
}
