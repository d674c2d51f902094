// _core's int8 GEMM (cpu/qgemm.h) for gradsmith.ops and the quantized layers. A packing of B carries the
// name of the int8 path it was made for; a call on another path (after set_isa) is refused, and
// gradsmith.ops packs again. Every int8 entry is checked to lie in [-127, 127] before a kernel runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "bindings/array_checks.h"
#include "cpu/machine_peak.h"
#include "cpu/qgemm.h"

namespace py = pybind11;
namespace cpu = gradsmith::cpu;
using i64 = int64_t;

namespace {

using namespace gradsmith::bindings;

void check_range(const int8_t* p, i64 n, const char* name) {
  for (i64 i = 0; i < n; ++i)
    if (p[i] == -128)
      throw py::value_error(std::string(name) + ": int8 entries must lie in [-127, 127] (Keras's symmetric "
                            "range); found -128 at flat index " + std::to_string(i));
}

void check_k(i64 K) {
  if (K > cpu::kQgemmMaxK)
    throw py::value_error("int8 matmul: K = " + std::to_string(K) + " is over " + std::to_string(cpu::kQgemmMaxK) +
                          ", where int32 sums could overflow");
}

py::tuple qgemm_pack(const py::array& b) {
  if (b.ndim() != 2) throw py::value_error("b: expected a 2-D int8 array, got shape " + shape_str(b));
  const int8_t* B = data_of<int8_t>(b, "b", false);
  const i64 K = b.shape(0), N = b.shape(1);
  check_k(K);
  check_range(B, K * N, "b");
  const cpu::QKernelTable& qk = cpu::qkernels();
  py::array_t<int8_t> packed((py::ssize_t)cpu::qgemm_packed_bytes(qk, K, N));
  py::array_t<int32_t> colsum((py::ssize_t)N);
  int8_t* P = packed.mutable_data();
  int32_t* S = colsum.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::qgemm_pack_b(qk, K, N, B, N, P, S);
  }
  return py::make_tuple(packed, colsum, std::string(qk.name));
}

// The packing checked against the path in use and the sizes; returns its data.
const int8_t* checked_packing(const py::array& packed, const py::array& colsum, const std::string& isa, i64 K, i64 N) {
  const cpu::QKernelTable& qk = cpu::qkernels();
  if (isa != qk.name)
    throw py::value_error("int8 matmul: the weights were packed for the '" + isa + "' path, but '" +
                          std::string(qk.name) + "' is in use: pack them again");
  if (packed.ndim() != 1 || (i64)packed.shape(0) != cpu::qgemm_packed_bytes(qk, K, N))
    throw py::value_error("packed: expected " + std::to_string(cpu::qgemm_packed_bytes(qk, K, N)) +
                          " bytes for K = " + std::to_string(K) + ", N = " + std::to_string(N) + ", got shape " +
                          shape_str(packed));
  expect_shape(colsum, "colsum", {N});
  data_of<int32_t>(colsum, "colsum", false);
  return data_of<int8_t>(packed, "packed", false);
}

py::array_t<int32_t> qgemm_s32(const py::array& a, const py::array& packed, const py::array& colsum,
                               const std::string& isa, i64 N) {
  if (a.ndim() != 2) throw py::value_error("a: expected a 2-D int8 array, got shape " + shape_str(a));
  const int8_t* A = data_of<int8_t>(a, "a", false);
  const i64 M = a.shape(0), K = a.shape(1);
  check_k(K);
  check_range(A, M * K, "a");
  const int8_t* P = checked_packing(packed, colsum, isa, K, N);
  const int32_t* S = static_cast<const int32_t*>(colsum.data());
  py::array_t<int32_t> c(std::vector<py::ssize_t>{(py::ssize_t)M, (py::ssize_t)N});
  int32_t* C = c.mutable_data();
  py::gil_scoped_release nogil;
  cpu::qgemm_s32(M, N, K, A, K, P, S, C, N);
  return c;
}

void qdense_forward(const py::array& x, const py::array& packed, const py::array& colsum, const std::string& isa,
                    const py::array& w_scale, const py::object& bias, int kind, float param, const py::array& out) {
  if (x.ndim() != 2) throw py::value_error("x: expected a 2-D float32 array, got shape " + shape_str(x));
  const float* X = data_of<float>(x, "x", false);
  const i64 M = x.shape(0), K = x.shape(1);
  if (w_scale.ndim() != 1) throw py::value_error("kernel_scale: expected a 1-D array, got shape " + shape_str(w_scale));
  const i64 N = w_scale.shape(0);
  const float* WS = data_of<float>(w_scale, "kernel_scale", false);
  check_k(K);
  const int8_t* P = checked_packing(packed, colsum, isa, K, N);
  const int32_t* S = static_cast<const int32_t*>(colsum.data());
  const float* B = nullptr;
  if (!bias.is_none()) {
    const py::array b = py::reinterpret_borrow<py::array>(bias);
    expect_shape(b, "bias", {N});
    B = data_of<float>(b, "bias", false);
  }
  float* Y = out2(out, "out", M, N);
  const gradsmith::ActParams act = activation(kind, param);
  std::vector<float> xs((size_t)M);
  py::gil_scoped_release nogil;
  cpu::qdense_forward(M, N, K, X, K, P, S, WS, B, act, Y, N, xs.data());
}

}  // namespace

void bind_qgemm(py::module_& m) {
  m.def("qgemm_isa", []() { return std::string(cpu::qkernels().name); },
        "The int8 GEMM path in use: 'avx512_vnni', 'avx2' or 'scalar' (follows the CPU path, see set_isa).");
  m.def("cpu_has_vnni", &cpu::cpu_has_vnni, "Whether this CPU has AVX-512 VNNI.");
  m.def("qgemm_pack", &qgemm_pack, py::arg("b"),
        "b int8 (K, N), entries in [-127, 127] -> (packed int8 (bytes,), colsum int32 (N,), path name): B in "
        "the panels of the int8 path in use");
  m.def("qgemm_s32", &qgemm_s32, py::arg("a"), py::arg("packed"), py::arg("colsum"), py::arg("isa"), py::arg("n"),
        "c int32 (M, N) = a int8 (M, K) @ B, exact; B as qgemm_pack returned it");
  m.def("qdense_forward", &qdense_forward, py::arg("x"), py::arg("packed"), py::arg("colsum"), py::arg("isa"),
        py::arg("kernel_scale"), py::arg("bias"), py::arg("kind"), py::arg("param"), py::arg("out"),
        "out (M, N) = act(Q(x) @ W / (kernel_scale * x_scale) + bias): Keras's int8 Dense, x float32 (M, K) "
        "quantized per row on the fly, W as qgemm_pack returned it");
  m.def(
      "peak_int8_run",
      [](int64_t iters) {
        if (iters < 1) throw py::value_error("iters must be >= 1, got " + std::to_string(iters));
        cpu::PeakRun r;
        {
          py::gil_scoped_release nogil;
          r = cpu::int8_peak_run(iters);
        }
        return py::make_tuple(r.work, r.seconds);
      },
      py::arg("iters"),
      "Run `iters` steps of independent vpdpbusd chains on every pool thread at once (avx512_vnni path only; "
      "(0, 0) otherwise). Returns (integer ops, seconds).");
}
