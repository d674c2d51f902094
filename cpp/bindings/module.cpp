// gradsmith._core: the pybind11 module over the CPU kernels.
//
// Public users call gradsmith.ops, which converts dtypes, allocates outputs and
// raises friendly errors. This layer trusts nothing either: every array is
// checked here for dtype (float32 / int64), C-contiguity, writability and the
// exact shape the kernel will touch, so no call can read or write out of
// bounds. Kernels run with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <string>
#include <vector>

#include "bindings/array_checks.h"
#include "bindings/optimizer_args.h"
#include "cpu/allocation_counter.h"
#include "cpu/dispatch.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"

namespace py = pybind11;
namespace cpu = gradsmith::cpu;

// Defined in bench_bindings.cpp: the machine-peak measurements.
void bind_bench(py::module_& m);
void bind_cpu_runner(py::module_& m);
void bind_cuda(py::module_& m);  // cuda_bindings.cpp, or cuda_unavailable.cpp without CUDA
void bind_kinds(py::module_& m);  // kinds.cpp: _core.kinds
void bind_conv(py::module_& m);   // conv_bindings.cpp: convolution and pooling
void bind_embedding(py::module_& m);  // embedding_bindings.cpp
void bind_qgemm(py::module_& m);      // qgemm_bindings.cpp: the int8 GEMM and int8 Dense
void bind_recurrent(py::module_& m);  // recurrent_bindings.cpp: SimpleRNN, GRU, LSTM
using gradsmith::ActParams;
using i64 = int64_t;

namespace {

using namespace gradsmith::bindings;

void gemm(const py::array& a, const py::array& b, const py::array& c, bool ta, bool tb, float alpha, float beta) {
  const i64 M = dim(a, "a", ta ? 1 : 0), K = dim(a, "a", ta ? 0 : 1);
  const i64 Kb = dim(b, "b", tb ? 1 : 0), N = dim(b, "b", tb ? 0 : 1);
  if (K != Kb)
    throw py::value_error("matmul: inner dimensions differ: op(a) is (" + std::to_string(M) + "," + std::to_string(K) +
                          ") and op(b) is (" + std::to_string(Kb) + "," + std::to_string(N) + ")");
  const float* A = data_of<float>(a, "a", false);
  const float* B = data_of<float>(b, "b", false);
  float* C = out2(c, "out", M, N);
  // The kernel reads A and B while it writes C: an input that shares memory
  // with C is copied first, so the result is that of unaliased arrays.
  auto overlaps_c = [&](const float* p, i64 n) { return n > 0 && M * N > 0 && p < C + M * N && C < p + n; };
  std::vector<float> a_copy, b_copy;
  if (overlaps_c(A, M * K)) A = (a_copy = std::vector<float>(A, A + M * K)).data();
  if (overlaps_c(B, K * N)) B = (b_copy = std::vector<float>(B, B + K * N)).data();
  py::gil_scoped_release nogil;
  cpu::gemm(ta, tb, M, N, K, alpha, A, a.shape(1), B, b.shape(1), beta, C, N);
}

// matmul's fast path: runs the product and returns true when every argument is
// a float32 C-contiguous 2-D ndarray of fitting shapes (out writable, not
// overlapping an input); otherwise returns false, touching nothing, so that
// gradsmith.ops can convert, copy or explain.
bool gemm_if_plain(const py::handle& a_h, const py::handle& b_h, const py::handle& c_h, bool ta, bool tb, float alpha,
                   float beta) {
  auto plain = [](const py::handle& h) {
    if (!py::isinstance<py::array>(h)) return false;
    const py::array a = py::reinterpret_borrow<py::array>(h);
    return a.ndim() == 2 && has_dtype<float>(a) && (a.flags() & py::array::c_style);
  };
  if (!plain(a_h) || !plain(b_h) || !plain(c_h)) return false;
  const py::array a = py::reinterpret_borrow<py::array>(a_h), b = py::reinterpret_borrow<py::array>(b_h);
  py::array c = py::reinterpret_borrow<py::array>(c_h);
  const i64 M = ta ? a.shape(1) : a.shape(0), K = ta ? a.shape(0) : a.shape(1);
  const i64 Kb = tb ? b.shape(1) : b.shape(0), N = tb ? b.shape(0) : b.shape(1);
  if (K != Kb || c.shape(0) != M || c.shape(1) != N || !c.writeable()) return false;
  const float* A = static_cast<const float*>(a.data());
  const float* B = static_cast<const float*>(b.data());
  float* C = static_cast<float*>(c.mutable_data());
  auto overlaps = [&](const float* p, i64 n) { return n > 0 && M * N > 0 && p < C + M * N && C < p + n; };
  if (overlaps(A, M * K) || overlaps(B, K * N)) return false;
  py::gil_scoped_release nogil;
  cpu::gemm(ta, tb, M, N, K, alpha, A, a.shape(1), B, b.shape(1), beta, C, N);
  return true;
}

void activation_forward(const py::array& x, const py::array& y, int kind, float param) {
  same_layout(x, y, "x", "out");
  const auto [rows, cols] = rows_cols(x);
  const float* X = data_of<float>(x, "x", false);
  float* Y = data_of<float>(y, "out", true);
  const ActParams act = activation(kind, param);
  py::gil_scoped_release nogil;
  cpu::activation_forward(act, X, Y, rows, cols);
}

void activation_backward(const py::array& dy, const py::array& x, const py::array& dx, int kind, float param) {
  same_layout(dy, x, "dy", "x");
  same_layout(x, dx, "x", "out");
  const auto [rows, cols] = rows_cols(x);
  const float* DY = data_of<float>(dy, "dy", false);
  const float* X = data_of<float>(x, "x", false);
  float* DX = data_of<float>(dx, "out", true);
  const ActParams act = activation(kind, param);
  py::gil_scoped_release nogil;
  cpu::activation_backward(act, DY, X, DX, rows, cols);
}

void dense_forward(const py::array& x, const py::array& w, const py::object& b, const py::array& y,
                   const py::object& z, int kind, float param) {
  const i64 batch = dim(x, "x", 0), in = dim(x, "x", 1), units = dim(w, "kernel", 1);
  const float* X = in2(x, "x", batch, in);
  const float* W = in2(w, "kernel", in, units);
  const float* B = nullptr;
  if (!b.is_none()) {
    py::array ba = array_arg(b, "bias");
    expect_shape(ba, "bias", {units});
    B = data_of<float>(ba, "bias", false);
  }
  float* Y = out2(y, "out", batch, units);
  float* Z = z.is_none() ? nullptr : out2(array_arg(z, "preactivation"), "preactivation", batch, units);
  const ActParams act = activation(kind, param);
  py::gil_scoped_release nogil;
  cpu::dense_forward(X, W, B, act, Y, Z, batch, in, units);
}

void dense_backward(const py::array& dy, const py::array& x, const py::array& w, const py::array& z, int kind,
                    float param, const py::array& dz, const py::object& dx, const py::array& dw,
                    const py::object& db) {
  const i64 batch = dim(x, "x", 0), in = dim(x, "x", 1), units = dim(w, "kernel", 1);
  const float* DY = in2(dy, "dy", batch, units);
  const float* X = in2(x, "x", batch, in);
  const float* W = in2(w, "kernel", in, units);
  const float* Z = in2(z, "preactivation", batch, units);
  float* DZ = out2(dz, "dz", batch, units);
  float* DX = dx.is_none() ? nullptr : out2(array_arg(dx, "dx"), "dx", batch, in);
  float* DW = out2(dw, "dkernel", in, units);
  float* DB = nullptr;
  if (!db.is_none()) {
    py::array dba = array_arg(db, "dbias");
    expect_shape(dba, "dbias", {units});
    DB = data_of<float>(dba, "dbias", true);
  }
  const ActParams act = activation(kind, param);
  py::gil_scoped_release nogil;
  cpu::dense_backward(DY, X, W, Z, act, DZ, DX, DW, DB, batch, in, units);
}

double loss(int kind, bool from_logits, float label_smoothing, float delta, const py::object& y_true,
            const py::object& labels, const py::array& y_pred, const py::object& sample_weight, const py::array& grad) {
  if (kind < cpu::kMse || kind >= cpu::kNumLosses) throw py::value_error("unknown loss kind");
  const i64 rows = dim(y_pred, "y_pred", 0), cols = dim(y_pred, "y_pred", 1);
  const float* P = data_of<float>(y_pred, "y_pred", false);
  float* G = out2(grad, "grad", rows, cols);
  const float* T = nullptr;
  const int64_t* L = nullptr;
  if (kind == cpu::kSparseCategoricalXent) {
    py::array la = array_arg(labels, "labels");
    expect_shape(la, "labels", {rows});
    L = data_of<int64_t>(la, "labels", false);
    for (i64 i = 0; i < rows; ++i)
      if (L[i] < 0 || L[i] >= cols)
        throw py::value_error("labels: label " + std::to_string(L[i]) + " at index " + std::to_string(i) +
                              " is outside [0, " + std::to_string(cols) + ")");
  } else {
    T = in2(array_arg(y_true, "y_true"), "y_true", rows, cols);
  }
  const float* SW = nullptr;
  if (!sample_weight.is_none()) {
    py::array sw = array_arg(sample_weight, "sample_weight");
    expect_shape(sw, "sample_weight", {rows});
    SW = data_of<float>(sw, "sample_weight", false);
  }
  cpu::LossArgs args;
  args.kind = kind;
  args.from_logits = from_logits;
  args.label_smoothing = label_smoothing;
  args.delta = delta;
  py::gil_scoped_release nogil;
  return cpu::loss_and_grad(args, T, L, P, SW, G, rows, cols);
}

// State lists may be None (absent) or a list with one array per parameter.
std::vector<float*> state_list(const py::object& s, const char* name, const std::vector<py::array>& params) {
  std::vector<float*> out(params.size(), nullptr);
  if (s.is_none()) return out;
  auto arrays = array_list(s, name);
  if (arrays.size() != params.size())
    throw py::value_error(std::string(name) + ": expected " + std::to_string(params.size()) + " arrays, got " +
                          std::to_string(arrays.size()));
  for (size_t i = 0; i < arrays.size(); ++i) {
    same_layout(arrays[i], params[i], name, "params");
    out[i] = data_of<float>(arrays[i], name, true);
  }
  return out;
}

// Buffers updated in place must not overlap one another or the gradients
// (gradients may share memory). Each buffer is one byte interval (C-contiguous);
// sorted by start, one overlaps an earlier one iff it starts before the
// furthest end seen so far.
void check_no_overlap(const std::vector<cpu::ParamBuffer>& bufs) {
  struct Interval {
    uintptr_t start, end;
    bool written;
  };
  std::vector<Interval> all;
  for (const cpu::ParamBuffer& b : bufs) {
    if (b.n == 0) continue;
    const uintptr_t bytes = (uintptr_t)b.n * sizeof(float);
    for (const float* p : {(const float*)b.w, (const float*)b.s0, (const float*)b.s1, (const float*)b.s2})
      if (p) all.push_back({(uintptr_t)p, (uintptr_t)p + bytes, true});
    all.push_back({(uintptr_t)b.g, (uintptr_t)b.g + bytes, false});
  }
  std::sort(all.begin(), all.end(), [](const Interval& a, const Interval& b) { return a.start < b.start; });
  uintptr_t end_written = 0, end_any = 0;
  for (const Interval& iv : all) {
    if (iv.start < end_written || (iv.written && iv.start < end_any))
      throw py::value_error("optimizer buffers (params, state, grads) must not overlap");
    end_any = std::max(end_any, iv.end);
    if (iv.written) end_written = std::max(end_written, iv.end);
  }
}

// One fused step over lists of buffers; the optimizer by its Keras configuration (bindings/optimizer_args.h).
void optimizer_step(int kind, const py::object& params_obj, const py::object& grads_obj, const py::object& s0,
                    const py::object& s1, const py::object& s2, double lr, float weight_decay, bool nesterov,
                    int clip_kind, float clip, double momentum, double beta_1, double beta_2, double epsilon,
                    double rho, int64_t step, const py::object& keep) {
  const gradsmith::OptimizerArgs a =
      optimizer_args(kind, lr, weight_decay, nesterov, momentum, beta_1, beta_2, epsilon, rho, step);
  if (clip_kind < gradsmith::kClipNone || clip_kind >= gradsmith::kNumClipKinds)
    throw py::value_error("unknown clip kind");
  const std::vector<py::array> params = array_list(params_obj, "params"), grads = array_list(grads_obj, "grads");
  if (grads.size() != params.size())
    throw py::value_error("grads: expected " + std::to_string(params.size()) + " arrays, got " +
                          std::to_string(grads.size()));
  const auto S0 = state_list(s0, "state 0", params), S1 = state_list(s1, "state 1", params),
             S2 = state_list(s2, "state 2", params);
  const bool needs_s0 = kind != gradsmith::kSgd, needs_s1 = kind == gradsmith::kAdam || kind == gradsmith::kAdamax;
  // keep: None, or one pruning mask (or None) per parameter array, each laid out as it
  std::vector<const float*> K(params.size(), nullptr);
  py::list masks;  // held while the step reads them
  if (!keep.is_none()) {
    if (!py::isinstance<py::list>(keep)) throw py::type_error("keep: expected a list of masks (or None)");
    masks = py::reinterpret_borrow<py::list>(keep);
    if (masks.size() != params.size())
      throw py::value_error("keep: expected " + std::to_string(params.size()) + " masks or None, got " +
                            std::to_string(masks.size()));
    for (size_t i = 0; i < params.size(); ++i) {
      if (masks[i].is_none()) continue;
      const py::array m = array_arg(py::object(masks[i]), "keep");
      same_layout(m, params[i], "keep", "params");
      K[i] = data_of<float>(m, "keep", false);
    }
  }
  std::vector<cpu::ParamBuffer> bufs;
  for (size_t i = 0; i < params.size(); ++i) {
    same_layout(grads[i], params[i], "grads", "params");
    if ((needs_s0 && !S0[i]) || (needs_s1 && !S1[i])) throw py::value_error("optimizer state missing");
    bufs.push_back({data_of<float>(params[i], "params", true), data_of<float>(grads[i], "grads", false), S0[i], S1[i],
                    S2[i], (i64)params[i].size(), K[i]});
  }
  check_no_overlap(bufs);
  const gradsmith::bindings::TrainingCall call;
  cpu::optimizer_step(a, bufs, clip_kind, clip);
}

void dropout(const py::array& x, const py::array& y, double rate, uint64_t seed, uint64_t offset) {
  if (!(rate >= 0.0 && rate < 1.0)) throw py::value_error("rate must be in [0, 1), got " + std::to_string(rate));
  same_layout(x, y, "x", "out");
  const float* X = data_of<float>(x, "x", false);
  float* Y = data_of<float>(y, "out", true);
  const i64 n = x.size();
  py::gil_scoped_release nogil;
  cpu::dropout(X, Y, n, rate, seed, offset);
}

// A (cols,) float32 vector argument, or null for None when optional.
float* column_vector(const py::object& o, const char* name, i64 cols, bool writable) {
  if (o.is_none()) return nullptr;
  const py::array a = array_arg(o, name);
  expect_shape(a, name, {cols});
  return data_of<float>(a, name, writable);
}

void batch_norm_forward(const py::array& x, const py::object& gamma, const py::object& beta, float eps, bool training,
                        const py::array& mean, const py::array& var, const py::array& y) {
  if (!(eps > 0.f)) throw py::value_error("epsilon must be > 0");
  const i64 rows = dim(x, "x", 0), cols = dim(x, "x", 1);
  const float* X = in2(x, "x", rows, cols);
  float* Y = out2(y, "out", rows, cols);
  float* M = column_vector(mean, "mean", cols, training);
  float* V = column_vector(var, "variance", cols, training);
  const float* G = column_vector(gamma, "gamma", cols, false);
  const float* B = column_vector(beta, "beta", cols, false);
  if (training && rows == 0) throw py::value_error("batch statistics need at least one row");
  py::gil_scoped_release nogil;
  cpu::batch_norm_forward(X, G, B, eps, training, M, V, Y, rows, cols);
}

void batch_norm_backward(const py::array& dy, const py::array& x, const py::array& mean, const py::array& var,
                         const py::object& gamma, float eps, bool batch_statistics, const py::object& dx,
                         const py::object& dgamma, const py::object& dbeta) {
  if (!(eps > 0.f)) throw py::value_error("epsilon must be > 0");
  const i64 rows = dim(x, "x", 0), cols = dim(x, "x", 1);
  const float* X = in2(x, "x", rows, cols);
  const float* DY = in2(dy, "dy", rows, cols);
  const float* M = column_vector(mean, "mean", cols, false);
  const float* V = column_vector(var, "variance", cols, false);
  const float* G = column_vector(gamma, "gamma", cols, false);
  float* DX = dx.is_none() ? nullptr : out2(array_arg(dx, "dx_out"), "dx_out", rows, cols);
  float* DG = column_vector(dgamma, "dgamma_out", cols, true);
  float* DB = column_vector(dbeta, "dbeta_out", cols, true);
  py::gil_scoped_release nogil;
  cpu::batch_norm_backward(DY, X, M, V, G, eps, batch_statistics, DX, DG, DB, rows, cols);
}

}  // namespace

void bind_profiler(py::module_& m);  // profiler_bindings.cpp

PYBIND11_MODULE(_core, m) {
  m.doc() = "gradsmith's compiled CPU kernels. Use gradsmith.ops; these functions check but do not convert.";
  bind_profiler(m);
  bind_bench(m);
  bind_cpu_runner(m);
  bind_cuda(m);
  bind_kinds(m);
  bind_conv(m);
  bind_embedding(m);
  bind_qgemm(m);
  bind_recurrent(m);

  m.def("supported_isas", &cpu::supported_isas, "CPU paths this machine can run, best last.");
  m.def("current_isa", [] { return std::string(cpu::kernels().name); }, "The CPU path in use.");
  m.def("set_isa", &cpu::set_isa, py::arg("name"), "Use another CPU path (scalar, avx2, avx512).");
  m.def("get_num_threads", &cpu::num_threads);
  m.def("allocation_count", &cpu::allocation_count, "operator new calls made by gradsmith's C++ code so far.");
  m.attr("counts_allocations") = cpu::counts_allocations();
#if defined(GS_SANITIZE)
  m.attr("sanitizers") = GS_SANITIZE;  // a test build (GRADSMITH_SANITIZE): which sanitizers are in it
#else
  m.attr("sanitizers") = "";
#endif
  m.def("set_num_threads", [](int64_t n) {
    if (n < 1 || n > cpu::kMaxThreads)
      throw py::value_error("number of threads must be in [1, " + std::to_string(cpu::kMaxThreads) + "], got " +
                            std::to_string(n));
    int got;
    {
      py::gil_scoped_release nogil;
      got = cpu::set_num_threads((int)n);
    }
    if (got < n)
      throw py::value_error("only " + std::to_string(got) + " of " + std::to_string(n) +
                            " threads could be started (the system refused more): gradsmith uses " +
                            std::to_string(got));
  }, py::arg("n"));
  m.def("startup_notes", [] {
    py::list notes;
    for (const std::string& s : {cpu::isa_note(), cpu::thread_pool_note()})
      if (!s.empty()) notes.append(s);
    return notes;
  }, "Why GRADSMITH_CPU or OMP_NUM_THREADS were not followed at import, if they were not.");
  m.def("gemm_blocking", [] {
    const auto& b = cpu::kernels().gemm;
    py::dict d;
    d["mr"] = b.mr; d["nr"] = b.nr; d["mc"] = b.mc; d["kc"] = b.kc; d["nc"] = b.nc;
    return d;
  });

  m.def("gemm_if_plain", &gemm_if_plain, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("transpose_a"),
        py::arg("transpose_b"), py::arg("alpha"), py::arg("beta"),
        "The product for plain float32 C-contiguous arrays (True), else False with nothing touched.");
  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("transpose_a"), py::arg("transpose_b"),
        py::arg("alpha"), py::arg("beta"));
  m.def("activation_forward", &activation_forward, py::arg("x"), py::arg("out"), py::arg("kind"), py::arg("param"));
  m.def("activation_backward", &activation_backward, py::arg("dy"), py::arg("x"), py::arg("out"), py::arg("kind"),
        py::arg("param"));
  m.def("dense_forward", &dense_forward, py::arg("x"), py::arg("kernel"), py::arg("bias"), py::arg("out"),
        py::arg("preactivation"), py::arg("kind"), py::arg("param"));
  m.def("dense_backward", &dense_backward, py::arg("dy"), py::arg("x"), py::arg("kernel"), py::arg("preactivation"),
        py::arg("kind"), py::arg("param"), py::arg("dz"), py::arg("dx"), py::arg("dkernel"), py::arg("dbias"));
  m.def("loss", &loss, py::arg("kind"), py::arg("from_logits"), py::arg("label_smoothing"), py::arg("delta"),
        py::arg("y_true"), py::arg("labels"), py::arg("y_pred"), py::arg("sample_weight"), py::arg("grad"));
  m.def("optimizer_step", &optimizer_step, py::arg("kind"), py::arg("params"), py::arg("grads"), py::arg("s0"),
        py::arg("s1"), py::arg("s2"), py::arg("lr"), py::arg("weight_decay"), py::arg("nesterov"),
        py::arg("clip_kind"), py::arg("clip"), py::kw_only(), py::arg("momentum") = 0.0, py::arg("beta_1") = 0.9,
        py::arg("beta_2") = 0.999, py::arg("epsilon") = 1e-7, py::arg("rho") = 0.9, py::arg("step") = 1,
        py::arg("keep") = py::none());
  m.def("batch_norm_forward", &batch_norm_forward, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("eps"),
        py::arg("training"), py::arg("mean"), py::arg("var"), py::arg("out"));
  m.def("batch_norm_backward", &batch_norm_backward, py::arg("dy"), py::arg("x"), py::arg("mean"), py::arg("var"),
        py::arg("gamma"), py::arg("eps"), py::arg("batch_statistics"), py::arg("dx_out"), py::arg("dgamma_out"),
        py::arg("dbeta_out"));
  m.def("dropout", &dropout, py::arg("x"), py::arg("out"), py::arg("rate"), py::arg("seed"), py::arg("offset"));
  m.def("sum", [](const py::array& x) {
    const float* X = data_of<float>(x, "x", false);
    py::gil_scoped_release nogil;
    return cpu::sum(X, x.size());
  });
  m.def("sum_squares", [](const py::array& x) {
    const float* X = data_of<float>(x, "x", false);
    py::gil_scoped_release nogil;
    return cpu::sum_squares(X, x.size());
  });
  m.def("col_sums", [](const py::array& x, const py::array& out) {
    const i64 rows = dim(x, "x", 0), cols = dim(x, "x", 1);
    const float* X = in2(x, "x", rows, cols);
    expect_shape(out, "out", {cols});
    float* O = data_of<float>(out, "out", true);
    py::gil_scoped_release nogil;
    cpu::col_sums(X, O, rows, cols);
  });
  m.def("count_correct", [](int kind, const py::object& y_true, const py::object& labels, const py::array& y_pred,
                            float threshold) {
    if (kind < cpu::kCountBinary || kind >= gradsmith::kNumCountKinds) throw py::value_error("unknown count kind");
    const i64 rows = dim(y_pred, "y_pred", 0), cols = dim(y_pred, "y_pred", 1);
    const float* P = data_of<float>(y_pred, "y_pred", false);
    const float* T = nullptr;
    const int64_t* L = nullptr;
    if (kind == cpu::kCountSparse) {
      py::array la = array_arg(labels, "labels");
      expect_shape(la, "labels", {rows});
      L = data_of<int64_t>(la, "labels", false);
    } else {
      T = in2(array_arg(y_true, "y_true"), "y_true", rows, cols);
    }
    if (kind != cpu::kCountBinary && cols == 0 && rows > 0) throw py::value_error("y_pred has no classes");
    return cpu::count_correct(kind, T, L, P, rows, cols, threshold);
  });
  m.def("binary_confusion", [](const py::array& y_true, const py::array& y_pred, float threshold) {
    same_layout(y_true, y_pred, "y_true", "y_pred");
    const float* T = data_of<float>(y_true, "y_true", false);
    const float* P = data_of<float>(y_pred, "y_pred", false);
    int64_t c[4];
    cpu::binary_confusion(T, P, y_pred.size(), threshold, c);
    return py::make_tuple(c[0], c[1], c[2], c[3]);
  });
  m.def("clip_norm_scale", &gradsmith::math::clip_norm_scale, py::arg("sum_of_squares"), py::arg("clip"),
        "clipnorm's factor c / max(sqrt(sum_of_squares), c) as a float32 value (NaN for a NaN norm).");
  m.def("global_clip_norm_scale", &gradsmith::math::global_clip_norm_scale, py::arg("sum_of_squares"),
        py::arg("clip"), "global_clipnorm's factor: clip_norm_scale, and NaN for an infinite norm (as Keras).");
  m.def("philox4x32", [](std::vector<uint32_t> counter, std::vector<uint32_t> key) {
    if (counter.size() != 4 || key.size() != 2) throw py::value_error("philox4x32: counter has 4 words, key 2");
    gradsmith::math::U32x4 c = {{counter[0], counter[1], counter[2], counter[3]}};
    auto r = gradsmith::math::philox4x32_10(c, key[0], key[1]);
    return std::vector<uint32_t>(r.v, r.v + 4);
  });
}
