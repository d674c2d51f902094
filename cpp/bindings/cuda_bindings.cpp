// _core's CUDA functions (built with a CUDA toolkit; cuda_unavailable.cpp
// stands in otherwise): device queries, the caching allocator's counters,
// DeviceArray (float32 device memory with __cuda_array_interface__), and the
// element-wise kernels over DeviceArrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <string>
#include <vector>

#include "bindings/array_checks.h"
#include "bindings/optimizer_args.h"
#include "cuda/kernels.h"
#include "cuda/layer_kernels.h"
#include "cuda/runtime.h"

namespace py = pybind11;
namespace cuda = gradsmith::cuda;
using i64 = int64_t;

namespace {

// The DLPack ABI (dlpack.h, version 0.8, the unversioned "dltensor" capsule):
// the few structs a producer fills in.
struct DLDevice {
  int32_t device_type;  // 2: kDLCUDA
  int32_t device_id;
};
struct DLDataType {
  uint8_t code;  // 2: kDLFloat
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // null: C order
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

// float32 device memory of a given shape, C order: gradsmith's own (freed with
// the array) or a view of another library's memory (kept alive through `owner`).
class DeviceArray {
 public:
  explicit DeviceArray(std::vector<i64> shape) : shape_(std::move(shape)) {
    size_ = count(shape_);
    data_ = static_cast<float*>(cuda::allocate((size_t)size_ * sizeof(float)));
    owned_ = true;
  }
  ~DeviceArray() {
    if (owned_) cuda::release(data_);
  }

  // A view of memory described by the CUDA Array Interface (CuPy, PyTorch, Numba, ...): float32,
  // C order; `obj` stays alive as long as the view.
  static DeviceArray* view(const py::object& obj) {
    if (!py::hasattr(obj, "__cuda_array_interface__"))
      throw py::type_error("expected a DeviceArray or an object with __cuda_array_interface__");
    const py::dict d = obj.attr("__cuda_array_interface__").cast<py::dict>();
    if (d["typestr"].cast<std::string>() != "<f4")
      throw py::type_error("only float32 device arrays are supported, got typestr " + d["typestr"].cast<std::string>());
    std::vector<i64> shape = d["shape"].cast<std::vector<i64>>();
    if (d.contains("strides") && !d["strides"].is_none()) {
      const std::vector<i64> strides = d["strides"].cast<std::vector<i64>>();
      i64 expect = sizeof(float);
      for (size_t k = shape.size(); k-- > 0;) {
        if (shape[k] > 1 && strides[k] != expect) throw py::value_error("only C-contiguous device arrays are supported");
        expect *= shape[k];
      }
    }
    const py::tuple data = d["data"].cast<py::tuple>();
    if (data[1].cast<bool>()) throw py::value_error("read-only device arrays are not supported");
    auto* v = new DeviceArray();
    v->shape_ = std::move(shape);
    v->size_ = count(v->shape_);
    v->data_ = reinterpret_cast<float*>(data[0].cast<uintptr_t>());
    v->owner_ = obj;
    return v;
  }

  // DLPack export: a capsule whose deleter releases a reference to this array.
  static py::capsule dlpack(const py::object& self) {
    const DeviceArray& a = self.cast<const DeviceArray&>();
    struct Context {
      py::object keep;
      std::vector<int64_t> shape;
    };
    auto* ctx = new Context{self, std::vector<int64_t>(a.shape_.begin(), a.shape_.end())};
    auto* m = new DLManagedTensor{};
    m->dl_tensor.data = a.data_;
    m->dl_tensor.device = {2, 0};
    m->dl_tensor.ndim = (int32_t)ctx->shape.size();
    m->dl_tensor.dtype = {2, 32, 1};
    m->dl_tensor.shape = ctx->shape.data();
    m->dl_tensor.strides = nullptr;
    m->manager_ctx = ctx;
    m->deleter = [](DLManagedTensor* self_) {
      PyGILState_STATE gil = PyGILState_Ensure();  // a consumer may call this from any thread
      delete static_cast<Context*>(self_->manager_ctx);
      delete self_;
      PyGILState_Release(gil);
    };
    // An unconsumed capsule frees the tensor itself; a consumer renames it "used_dltensor" first.
    return py::capsule(m, "dltensor", [](PyObject* cap) {
      if (PyCapsule_IsValid(cap, "dltensor")) {
        auto* t = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
        if (t && t->deleter) t->deleter(t);
      }
    });
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  static DeviceArray* from_numpy(const py::array& a) {
    const float* src = gradsmith::bindings::data_of<float>(a, "array", false);
    auto* d = new DeviceArray(std::vector<i64>(a.shape(), a.shape() + a.ndim()));
    cuda::copy_to_device(d->data_, src, (size_t)d->size_ * sizeof(float));
    return d;
  }
  py::array_t<float> numpy() const {
    py::array_t<float> out(std::vector<py::ssize_t>(shape_.begin(), shape_.end()));
    cuda::copy_to_host(out.mutable_data(), data_, (size_t)size_ * sizeof(float));
    return out;
  }
  py::dict interface() const {  // the CUDA Array Interface, version 3
    py::dict d;
    d["shape"] = py::tuple(py::cast(shape_));
    d["typestr"] = "<f4";
    d["data"] = py::make_tuple((uintptr_t)data_, false);
    d["strides"] = py::none();
    d["version"] = 3;
    d["stream"] = 1;  // the legacy default stream, which every kernel here uses
    return d;
  }
  float* data() const { return data_; }
  i64 size() const { return size_; }
  const std::vector<i64>& shape() const { return shape_; }
  bool owned() const { return owned_; }

 private:
  DeviceArray() = default;
  static i64 count(const std::vector<i64>& shape) {
    i64 n = 1;
    for (i64 d : shape) {
      if (d < 0) throw py::value_error("DeviceArray: dimensions must be >= 0");
      n *= d;
    }
    return n;
  }
  std::vector<i64> shape_;
  i64 size_ = 0;
  float* data_ = nullptr;
  bool owned_ = false;
  py::object owner_;  // the other library's array a view keeps alive
};

void same_size(const DeviceArray& a, const DeviceArray& b, const char* what) {
  if (a.shape() != b.shape()) throw py::value_error(std::string(what) + ": arrays must have the same shape");
}

float* ptr_or_null(const py::object& o, const DeviceArray& like, const char* what) {
  if (o.is_none()) return nullptr;
  const DeviceArray& a = o.cast<const DeviceArray&>();
  same_size(a, like, what);
  return a.data();
}

// (rows, cols) of a 2-D DeviceArray, checked.
std::pair<i64, i64> dims2(const DeviceArray& a, const char* name) {
  if (a.shape().size() != 2) throw py::value_error(std::string(name) + ": expected a 2-D DeviceArray");
  return {a.shape()[0], a.shape()[1]};
}

void expect2(const DeviceArray& a, const char* name, i64 rows, i64 cols) {
  const auto [r, c] = dims2(a, name);
  if (r != rows || c != cols)
    throw py::value_error(std::string(name) + ": expected shape (" + std::to_string(rows) + ", " +
                          std::to_string(cols) + "), got (" + std::to_string(r) + ", " + std::to_string(c) + ")");
}

const DeviceArray* optional(const py::object& o) { return o.is_none() ? nullptr : &o.cast<const DeviceArray&>(); }

// Shape (a, b, c, d) of a 4-D DeviceArray, checked.
std::vector<i64> dims4(const DeviceArray& a, const char* name) {
  if (a.shape().size() != 4) throw py::value_error(std::string(name) + ": expected a 4-D DeviceArray");
  return a.shape();
}

void expect4(const DeviceArray& a, const char* name, i64 n, i64 h, i64 w, i64 c) {
  if (dims4(a, name) != std::vector<i64>{n, h, w, c})
    throw py::value_error(std::string(name) + ": expected shape (" + std::to_string(n) + ", " + std::to_string(h) +
                          ", " + std::to_string(w) + ", " + std::to_string(c) + ")");
}

std::pair<i64, i64> pair_of(const std::vector<i64>& v, const char* name) {
  if (v.size() != 2) throw py::value_error(std::string(name) + ": expected two values");
  return {v[0], v[1]};
}

// The convolution of x (n, h, w, cin) by W (kh, kw, cin, filters), checked by math::conv_geometry.
gradsmith::math::ConvGeometry conv_geometry(const DeviceArray& x, const DeviceArray& W, const std::vector<i64>& strides,
                                            const std::vector<i64>& dilation, int padding) {
  const std::vector<i64> xs = dims4(x, "x"), ws = dims4(W, "kernel");
  if (xs[3] != ws[2]) throw py::value_error("conv: x's channels and the kernel's input channels differ");
  const auto s = pair_of(strides, "strides"), d = pair_of(dilation, "dilation_rate");
  gradsmith::math::ConvGeometry g;
  const std::string why = gradsmith::math::conv_geometry(xs[1], xs[2], xs[3], ws[3], ws[0], ws[1], s.first, s.second,
                                                         d.first, d.second, padding, &g);
  if (!why.empty()) throw py::value_error("conv: " + why);
  return g;
}

gradsmith::math::PoolGeometry pool_geometry(const std::vector<i64>& in, int mode, bool global,
                                            const std::vector<i64>& pool, const std::vector<i64>& strides,
                                            int padding) {
  const auto p = pair_of(pool, "pool_size"), s = pair_of(strides, "strides");
  gradsmith::math::PoolGeometry g;
  const std::string why = gradsmith::math::pool_geometry(in[1], in[2], in[3], mode, global, p.first, p.second,
                                                         s.first, s.second, padding, &g);
  if (!why.empty()) throw py::value_error("pooling: " + why);
  return g;
}

}  // namespace

void bind_cuda_runner(py::module_& m);  // cuda_runner.cpp
#if defined(GRADSMITH_CUDA_EMULATOR)
void bind_emulator(py::module_& m);  // emulator_bindings.cpp
#endif

void bind_cuda(py::module_& m) {
  static py::exception<cuda::Error> cuda_error(m, "CudaError", PyExc_RuntimeError);
  static py::exception<cuda::OutOfMemory> oom_error(m, "CudaOutOfMemoryError", PyExc_MemoryError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const cuda::OutOfMemory& e) {
      PyErr_SetString(oom_error.ptr(), e.what());
    } catch (const cuda::Error& e) {
      PyErr_SetString(cuda_error.ptr(), e.what());
    }
  });
  m.attr("cuda_built") = true;
#if defined(GRADSMITH_CUDA_EMULATOR)
  m.attr("cuda_emulated") = true;  // the kernels run on the CPU emulator (GRADSMITH_CUDA=EMULATE)
  bind_emulator(m);
#else
  m.attr("cuda_emulated") = false;
#endif
  m.def("cuda_available", &cuda::available);
  m.def("cuda_unavailable_reason", &cuda::unavailable_reason);
  m.def("cuda_device_count", &cuda::device_count);
  m.def("cuda_device_name", &cuda::device_name, py::arg("device"));
  m.def("cuda_synchronize", [] {
    py::gil_scoped_release nogil;
    cuda::synchronize();
  });
  m.def("cuda_memory_allocated", &cuda::memory_allocated);
  m.def("cuda_memory_cached", &cuda::memory_cached);
  m.def("cuda_empty_cache", &cuda::empty_cache);
  m.def("cuda_mem_get_info", [] {
    size_t free_bytes = 0, total = 0;
    cuda::mem_get_info(&free_bytes, &total);
    return py::make_tuple(free_bytes, total);
  });
  bind_cuda_runner(m);
  m.def("cuda_set_matmul_precision", &cuda::set_matmul_precision, py::arg("precision"),
        "0: float32, 1: TF32, 2: BF16 (tensor cores where the device has them).");
  m.def("cuda_matmul_precision", &cuda::matmul_precision);
  m.def("cuda_matmul_uses_tensor_cores", [] { return cuda::available() && cuda::matmul_uses_tensor_cores(); });

  py::class_<DeviceArray>(m, "DeviceArray", "float32 device memory, C order (see gradsmith.cuda).")
      .def(py::init<std::vector<i64>>(), py::arg("shape"))
      .def_static("from_numpy", &DeviceArray::from_numpy, py::arg("array"), py::return_value_policy::take_ownership)
      .def("numpy", &DeviceArray::numpy, "Copy to a new NumPy array.")
      .def_property_readonly("shape", [](const DeviceArray& a) { return py::tuple(py::cast(a.shape())); })
      .def_property_readonly("size", &DeviceArray::size)
      .def_property_readonly("dtype", [](const DeviceArray&) { return py::dtype::of<float>(); })
      .def_property_readonly("ptr", [](const DeviceArray& a) { return (uintptr_t)a.data(); })
      .def_property_readonly("__cuda_array_interface__", &DeviceArray::interface)
      .def_static("view", &DeviceArray::view, py::arg("obj"), py::return_value_policy::take_ownership,
                  "A DeviceArray over another library's float32 C-order device memory (no copy).")
      .def_property_readonly("owned", &DeviceArray::owned, "False for a view of another library's memory.")
      .def("__dlpack__", [](const py::object& self, const py::object& /*stream*/) { return DeviceArray::dlpack(self); },
           py::arg("stream") = py::none(),
           "DLPack export (no copy). Kernels run on the legacy default stream, which orders itself with "
           "every blocking stream, so no stream handshake is needed.")
      .def("__dlpack_device__", [](const DeviceArray&) { return py::make_tuple(2, 0); });

  m.def("cuda_gemm", [](const DeviceArray& a, const DeviceArray& b, DeviceArray& out, bool ta, bool tb, float alpha,
                        float beta) {
    const auto [ar, ac] = dims2(a, "a");
    const auto [br, bc] = dims2(b, "b");
    const i64 M = ta ? ac : ar, K = ta ? ar : ac, Kb = tb ? bc : br, N = tb ? br : bc;
    if (K != Kb) throw py::value_error("matmul: inner dimensions differ");
    expect2(out, "out", M, N);
    if (a.data() == out.data() || b.data() == out.data()) throw py::value_error("matmul: out must not be an input");
    cuda::gemm(ta, tb, M, N, K, alpha, a.data(), ac, b.data(), bc, beta, out.data(), N);
  });
  m.def("cuda_dense_forward", [](const DeviceArray& x, const DeviceArray& W, const py::object& bias, DeviceArray& out,
                                 const py::object& preact, int kind, float param) {
    const auto [batch, in] = dims2(x, "x");
    const auto [win, units] = dims2(W, "kernel");
    if (win != in) throw py::value_error("dense_forward: kernel rows must equal the input features");
    const DeviceArray* b = optional(bias);
    if (b && b->shape() != std::vector<i64>{units}) throw py::value_error("bias: expected shape (units,)");
    expect2(out, "out", batch, units);
    const DeviceArray* z = optional(preact);
    if (z) expect2(*z, "preactivation", batch, units);
    cuda::dense_forward(x.data(), W.data(), b ? b->data() : nullptr, gradsmith::bindings::activation(kind, param),
                        out.data(), z ? z->data() : nullptr, batch, in, units);
  });
  // The int8 Dense (cuda/qgemm.cu): x and out on the device; the weights as host arrays, copied up for the
  // call (a reference twin of the CPU's, not a fast path): w_words int32 (ceil(K / 4), N), kernel_scale and
  // bias float32 (N,).
  m.def("cuda_quantized_dense_forward", [](const DeviceArray& x, const py::array& w_words, const py::array& scale,
                                           const py::object& bias, int kind, float param, DeviceArray& out) {
    const auto [M, K] = dims2(x, "x");
    if (w_words.ndim() != 2) throw py::value_error("w_words: expected a 2-D int32 array");
    const i64 kg = (K + 3) / 4, N = w_words.shape(1);
    if ((i64)w_words.shape(0) != kg) throw py::value_error("w_words: expected ceil(K / 4) rows");
    const int32_t* W = gradsmith::bindings::data_of<int32_t>(w_words, "w_words", false);
    gradsmith::bindings::expect_shape(scale, "kernel_scale", {N});
    const float* S = gradsmith::bindings::data_of<float>(scale, "kernel_scale", false);
    const float* B = nullptr;
    py::array b;
    if (!bias.is_none()) {
      b = py::reinterpret_borrow<py::array>(bias);
      gradsmith::bindings::expect_shape(b, "bias", {N});
      B = gradsmith::bindings::data_of<float>(b, "bias", false);
    }
    expect2(out, "out", M, N);
    if (x.data() == out.data()) throw py::value_error("quantized_dense_forward: out must not be x");
    const gradsmith::ActParams act = gradsmith::bindings::activation(kind, param);
    struct Scratch {  // device memory of the call, released on every path out
      void* p[5] = {};
      ~Scratch() {
        for (void* q : p)
          if (q) cuda::release(q);
      }
    } d;
    const size_t wb = (size_t)(kg * N) * 4, sb = (size_t)N * 4;
    d.p[0] = cuda::allocate(wb ? wb : 4);
    d.p[1] = cuda::allocate(sb ? sb : 4);
    d.p[2] = B ? cuda::allocate(sb ? sb : 4) : nullptr;
    d.p[3] = cuda::allocate((size_t)(M * kg) * 4 + 4);
    d.p[4] = cuda::allocate((size_t)M * 4 + 4);
    if (wb) cuda::copy_to_device(d.p[0], W, wb);
    if (sb) cuda::copy_to_device(d.p[1], S, sb);
    if (B && sb) cuda::copy_to_device(d.p[2], B, sb);
    cuda::qdense_forward(x.data(), static_cast<const int32_t*>(d.p[0]), static_cast<const float*>(d.p[1]),
                         static_cast<const float*>(d.p[2]), act, out.data(), M, K, N, static_cast<int32_t*>(d.p[3]),
                         static_cast<float*>(d.p[4]));
  });
  m.def("cuda_dense_backward", [](const DeviceArray& dy, const DeviceArray& x, const DeviceArray& W,
                                  const DeviceArray& z, int kind, float param, DeviceArray& dz,
                                  const py::object& dx, DeviceArray& dW, const py::object& db) {
    const auto [batch, in] = dims2(x, "x");
    const auto [win, units] = dims2(W, "kernel");
    if (win != in) throw py::value_error("dense_backward: kernel rows must equal the input features");
    expect2(dy, "dy", batch, units);
    expect2(z, "preactivation", batch, units);
    expect2(dz, "dz", batch, units);
    expect2(dW, "dkernel", in, units);
    const DeviceArray* dxa = optional(dx);
    if (dxa) expect2(*dxa, "dx", batch, in);
    const DeviceArray* dba = optional(db);
    if (dba && dba->shape() != std::vector<i64>{units}) throw py::value_error("dbias: expected shape (units,)");
    cuda::dense_backward(dy.data(), x.data(), W.data(), z.data(), gradsmith::bindings::activation(kind, param),
                         dz.data(), dxa ? dxa->data() : nullptr, dW.data(), dba ? dba->data() : nullptr, batch, in,
                         units);
  });
  m.def("cuda_softmax_forward", [](const DeviceArray& z, DeviceArray& out) {
    const auto [rows, cols] = dims2(z, "x");
    expect2(out, "out", rows, cols);
    cuda::softmax_forward(z.data(), out.data(), rows, cols);
  });
  m.def("cuda_softmax_backward", [](const DeviceArray& dy, const DeviceArray& z, DeviceArray& out) {
    const auto [rows, cols] = dims2(z, "x");
    expect2(dy, "dy", rows, cols);
    expect2(out, "out", rows, cols);
    cuda::softmax_backward(dy.data(), z.data(), out.data(), rows, cols);
  });
  m.def("cuda_col_sums", [](const DeviceArray& x, DeviceArray& out) {
    const auto [rows, cols] = dims2(x, "x");
    if (out.shape() != std::vector<i64>{cols}) throw py::value_error("out: expected shape (cols,)");
    cuda::col_sums(x.data(), out.data(), rows, cols);
  });
  m.def("cuda_loss", [](int kind, bool from_logits, float label_smoothing, float delta, const py::object& y_true,
                        const py::object& labels, const DeviceArray& y_pred, const py::object& sample_weight,
                        DeviceArray& grad) {
    if (kind < gradsmith::kMse || kind >= gradsmith::kNumLosses) throw py::value_error("unknown loss");
    const auto [rows, cols] = dims2(y_pred, "y_pred");
    expect2(grad, "grad", rows, cols);
    const DeviceArray* t = optional(y_true);
    const DeviceArray* w = optional(sample_weight);
    if (t) expect2(*t, "y_true", rows, cols);
    if (w && w->shape() != std::vector<i64>{rows}) throw py::value_error("sample_weight: expected shape (rows,)");
    const bool sparse = kind == gradsmith::kSparseCategoricalXent;
    if (sparse == (t != nullptr)) throw py::value_error("give y_true for dense targets, labels for the sparse loss");
    // Labels come as host int64, checked here and uploaded for the call.
    int64_t* dlabels = nullptr;
    if (sparse) {
      const py::array l = gradsmith::bindings::array_arg(labels, "labels");
      gradsmith::bindings::expect_shape(l, "labels", {rows});
      const int64_t* L = gradsmith::bindings::data_of<int64_t>(l, "labels", false);
      for (i64 i = 0; i < rows; ++i)
        if (L[i] < 0 || L[i] >= cols) throw py::value_error("labels: a label is outside [0, cols)");
      dlabels = static_cast<int64_t*>(cuda::allocate(sizeof(int64_t) * (size_t)rows));
      cuda::copy_to_device(dlabels, L, sizeof(int64_t) * (size_t)rows);
    }
    gradsmith::LossArgs a;
    a.kind = kind;
    a.from_logits = from_logits;
    a.label_smoothing = label_smoothing;
    a.delta = delta;
    double value;
    try {
      value = cuda::loss_and_grad(a, t ? t->data() : nullptr, dlabels, y_pred.data(), w ? w->data() : nullptr,
                                  grad.data(), rows, cols);
    } catch (...) {
      cuda::release(dlabels);
      throw;
    }
    cuda::release(dlabels);
    return value;
  });
  m.def("cuda_activation_forward", [](const DeviceArray& x, DeviceArray& out, int kind, float param) {
    same_size(x, out, "activation_forward");
    const auto act = gradsmith::bindings::activation(kind, param);
    if (act.kind == gradsmith::kSoftmax) throw py::value_error("softmax on the GPU is not there yet");
    cuda::activation_forward(act, x.data(), out.data(), x.size());
  });
  m.def("cuda_activation_backward", [](const DeviceArray& dy, const DeviceArray& x, DeviceArray& out, int kind,
                                       float param) {
    same_size(dy, x, "activation_backward");
    same_size(x, out, "activation_backward");
    const auto act = gradsmith::bindings::activation(kind, param);
    if (act.kind == gradsmith::kSoftmax) throw py::value_error("softmax on the GPU is not there yet");
    cuda::activation_backward(act, dy.data(), x.data(), out.data(), x.size());
  });
  m.def("cuda_dropout", [](const DeviceArray& x, DeviceArray& out, double rate, uint64_t seed, uint64_t offset) {
    same_size(x, out, "dropout");
    if (!(rate >= 0.0 && rate < 1.0)) throw py::value_error("rate must be in [0, 1)");
    cuda::dropout(x.data(), out.data(), x.size(), rate, seed, offset);
  });
  m.def("cuda_optimizer_step", [](int kind, DeviceArray& w, const DeviceArray& g, const py::object& s0,
                                  const py::object& s1, const py::object& s2, double lr, float weight_decay,
                                  bool nesterov, float clip_value, float grad_scale, double momentum, double beta_1,
                                  double beta_2, double epsilon, double rho, int64_t step) {
    gradsmith::OptimizerArgs a = gradsmith::bindings::optimizer_args(kind, lr, weight_decay, nesterov, momentum,
                                                                     beta_1, beta_2, epsilon, rho, step);
    same_size(w, g, "optimizer_step");
    a.w = w.data();
    a.g = g.data();
    a.s0 = ptr_or_null(s0, w, "optimizer_step");
    a.s1 = ptr_or_null(s1, w, "optimizer_step");
    a.s2 = ptr_or_null(s2, w, "optimizer_step");
    if ((kind != gradsmith::kSgd && !a.s0) ||
        ((kind == gradsmith::kAdam || kind == gradsmith::kAdamax) && !a.s1))
      throw py::value_error("optimizer state missing");
    a.clip_value = clip_value;
    a.grad_scale = grad_scale;
    cuda::optimizer_step(a, w.size());
  }, py::arg("kind"), py::arg("w"), py::arg("g"), py::arg("s0"), py::arg("s1"), py::arg("s2"), py::arg("lr"),
        py::arg("weight_decay"), py::arg("nesterov"), py::arg("clip_value"), py::arg("grad_scale") = 1.0f,
        py::kw_only(), py::arg("momentum") = 0.0, py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.999,
        py::arg("epsilon") = 1e-7, py::arg("rho") = 0.9, py::arg("step") = 1,
        "One fused update of one buffer; the optimizer by its Keras configuration and the step t >= 1.");
  m.def("cuda_sum_squares", [](const DeviceArray& x) {
    py::gil_scoped_release nogil;
    return cuda::sum_squares(x.data(), x.size());
  }, py::arg("x"), "sum x^2 in double, in a fixed order (the same bits every run); waits for the result.");

  // The convolution and pooling kernels of the compiled layers (cuda/conv.cu, cuda/pool.cu) on DeviceArrays,
  // NHWC, for the tests against the CPU's; the scratch comes from the allocator, as the plan's arena does.
  m.def("cuda_conv2d_forward", [](const DeviceArray& x, const DeviceArray& W, const py::object& bias,
                                  DeviceArray& out, const py::object& preact, int kind, float param,
                                  const std::vector<i64>& strides, const std::vector<i64>& dilation, int padding) {
    const gradsmith::math::ConvGeometry g = conv_geometry(x, W, strides, dilation, padding);
    const i64 n = x.shape()[0];
    const DeviceArray* b = optional(bias);
    if (b && b->shape() != std::vector<i64>{g.out_c}) throw py::value_error("bias: expected shape (filters,)");
    expect4(out, "out", n, g.out_h, g.out_w, g.out_c);
    const DeviceArray* z = optional(preact);
    if (z) expect4(*z, "preactivation", n, g.out_h, g.out_w, g.out_c);
    DeviceArray scratch({std::max<i64>(cuda::conv_scratch(g, n), 1)});
    cuda::conv_forward(g, x.data(), W.data(), b ? b->data() : nullptr, gradsmith::bindings::activation(kind, param),
                       out.data(), z ? z->data() : nullptr, scratch.data(), n);
    cuda::synchronize();  // the scratch goes back to the allocator when this returns
  });
  m.def("cuda_conv2d_backward", [](const DeviceArray& dy, const DeviceArray& x, const DeviceArray& W,
                                   const py::object& preact, int kind, float param, const std::vector<i64>& strides,
                                   const std::vector<i64>& dilation, int padding, const py::object& dx,
                                   DeviceArray& dW, const py::object& db) {
    const gradsmith::math::ConvGeometry g = conv_geometry(x, W, strides, dilation, padding);
    const i64 n = x.shape()[0];
    expect4(dy, "dy", n, g.out_h, g.out_w, g.out_c);
    const gradsmith::ActParams act = gradsmith::bindings::activation(kind, param);
    const DeviceArray* z = optional(preact);
    if (z) expect4(*z, "preactivation", n, g.out_h, g.out_w, g.out_c);
    else if (act.kind != gradsmith::kLinear) throw py::value_error("conv: the pre-activation is needed");
    expect4(dW, "dkernel", g.k_h, g.k_w, g.in_c, g.out_c);
    const DeviceArray* dxa = optional(dx);
    if (dxa) expect4(*dxa, "dx", n, g.in_h, g.in_w, g.in_c);
    const DeviceArray* dba = optional(db);
    if (dba && dba->shape() != std::vector<i64>{g.out_c}) throw py::value_error("dbias: expected shape (filters,)");
    DeviceArray scratch({std::max<i64>(cuda::conv_scratch(g, n), 1)});
    cuda::conv_backward(g, dy.data(), x.data(), W.data(), z ? z->data() : dy.data(), act, scratch.data(),
                        dxa ? dxa->data() : nullptr, dW.data(), dba ? dba->data() : nullptr, n);
    cuda::synchronize();
  });
  m.def("cuda_pool2d_forward", [](const DeviceArray& x, DeviceArray& out, const py::object& argmax, int mode,
                                  bool global, const std::vector<i64>& pool, const std::vector<i64>& strides,
                                  int padding) {
    const gradsmith::math::PoolGeometry g = pool_geometry(dims4(x, "x"), mode, global, pool, strides, padding);
    const i64 n = x.shape()[0];
    expect4(out, "out", n, g.out_h, g.out_w, g.channels);
    const DeviceArray* arg = optional(argmax);
    if (arg) expect4(*arg, "argmax", n, g.out_h, g.out_w, g.channels);
    cuda::pool_forward(g, x.data(), out.data(), arg ? arg->data() : nullptr, n);
  });
  m.def("cuda_pool2d_backward", [](const DeviceArray& dy, const py::object& argmax, DeviceArray& dx, int mode,
                                   bool global, const std::vector<i64>& pool, const std::vector<i64>& strides,
                                   int padding) {
    const gradsmith::math::PoolGeometry g = pool_geometry(dims4(dx, "dx"), mode, global, pool, strides, padding);
    const i64 n = dx.shape()[0];
    expect4(dy, "dy", n, g.out_h, g.out_w, g.channels);
    const DeviceArray* arg = optional(argmax);
    if (arg) expect4(*arg, "argmax", n, g.out_h, g.out_w, g.channels);
    else if (mode == gradsmith::math::kPoolMax) throw py::value_error("pooling: max needs the argmax");
    cuda::pool_backward(g, dy.data(), arg ? arg->data() : nullptr, dx.data(), n);
  });
}
