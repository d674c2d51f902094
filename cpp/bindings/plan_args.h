// Argument parsing shared by the CPU and CUDA training-plan bindings: the
// layer, loss, optimizer and metric specs python/gradsmith/compiled_step.py
// builds, and the checks every batch passes before any kernel runs.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "bindings/array_checks.h"
#include "cpu/ops.h"
#include "model/plan.h"

namespace gradsmith {
namespace bindings {

namespace model = ::gradsmith::model;
namespace cpu = ::gradsmith::cpu;

constexpr size_t kMaxCountedMetrics = 8;

template <class T>
T get(const py::dict& d, const char* key) {
  if (!d.contains(key)) throw py::value_error(std::string("training plan spec: missing '") + key + "'");
  return d[key].cast<T>();
}

// One layer's description, as each Python layer gives it (layers/*.py, ``_compiled_config``): its kind,
// name, per-sample input shape and named values, read by the layer kind itself (model/layers/). Read here
// with no per-kind code. A counter array (Dropout's) is kept alive in `keep`.
inline model::LayerConfig layer_config(const py::dict& d, py::list& keep) {
  model::LayerConfig c;
  c.kind = get<std::string>(d, "kind");
  c.name = get<std::string>(d, "name");
  c.input.dims = get<std::vector<i64>>(d, "input_shape");
  double size = 1.0;
  for (i64 n : c.input.dims) {
    if (n < 1) throw py::value_error(c.where() + "input dimensions must be >= 1");
    size *= (double)n;
  }
  if (size > 1099511627776.0) throw py::value_error(c.where() + "an input sample of more than 2^40 values");
  c.numbers = get<std::map<std::string, double>>(d, "numbers");
  if (d.contains("weights")) c.weights = d["weights"].cast<std::map<std::string, i64>>();
  for (const auto& [weight, offset] : c.weights)
    if (offset < 0) throw py::value_error(c.where() + "weight '" + weight + "' has a negative offset");
  if (d.contains("penalties")) c.penalties = d["penalties"].cast<std::map<std::string, std::pair<double, double>>>();
  if (d.contains("integers")) c.integers = d["integers"].cast<std::map<std::string, i64>>();
  if (d.contains("lists")) c.lists = d["lists"].cast<std::map<std::string, std::vector<i64>>>();
  if (d.contains("counter") && !d["counter"].is_none()) {
    const py::array counter = d["counter"].cast<py::array>();
    expect_shape(counter, "counter", {1});
    c.counter = data_of<int64_t>(counter, "counter", true);
    keep.append(counter);
  }
  return c;
}

// A plan's specs, checked, with the host buffers they name.
struct PlanArgs {
  std::vector<model::LayerConfig> layers;
  LossArgs loss;
  double loss_weight = 1.0;
  OptimizerSpec optimizer;
  std::vector<model::TrainableRange> trainable;
  std::vector<model::MetricCount> metrics;
  model::PlanBuffers buffers;  // host memory
  bool sparse = false;
  py::list keep;  // the Python buffers the pointers point into
};

inline PlanArgs parse_plan_args(const py::list& layers, const py::dict& loss, const py::dict& optimizer,
                                const py::array& params, const py::array& grads,
                                const std::vector<std::array<i64, 3>>& trainable, const py::list& slots,
                                const std::vector<std::pair<int, float>>& metrics) {
  PlanArgs a;
  a.keep.append(params);
  a.keep.append(grads);
  float* P = data_of<float>(params, "params", true);
  float* G = data_of<float>(grads, "grads", true);
  expect_shape(grads, "grads", {(i64)params.size()});

  for (const py::handle h : layers) a.layers.push_back(layer_config(py::reinterpret_borrow<py::dict>(h), a.keep));

  a.loss.kind = get<int>(loss, "kind");
  if (a.loss.kind < cpu::kMse || a.loss.kind >= cpu::kNumLosses) throw py::value_error("unknown loss kind");
  a.loss.from_logits = get<bool>(loss, "from_logits");
  a.loss.label_smoothing = get<float>(loss, "label_smoothing");
  a.loss.delta = get<float>(loss, "delta");
  a.sparse = a.loss.kind == cpu::kSparseCategoricalXent;

  a.optimizer.kind = get<int>(optimizer, "kind");
  if (a.optimizer.kind < kSgd || a.optimizer.kind >= kNumOptimizers) throw py::value_error("unknown optimizer kind");
  a.optimizer.weight_decay = get<float>(optimizer, "weight_decay");
  a.optimizer.momentum = get<double>(optimizer, "momentum");
  a.optimizer.beta_1 = get<double>(optimizer, "beta_1");
  a.optimizer.beta_2 = get<double>(optimizer, "beta_2");
  a.optimizer.epsilon = get<double>(optimizer, "epsilon");
  a.optimizer.rho = get<double>(optimizer, "rho");
  a.optimizer.nesterov = get<bool>(optimizer, "nesterov");
  a.optimizer.clip_kind = get<int>(optimizer, "clip_kind");
  if (a.optimizer.clip_kind < kClipNone || a.optimizer.clip_kind >= kNumClipKinds) throw py::value_error("unknown clip");
  a.optimizer.clip = get<float>(optimizer, "clip");

  if (slots.size() != 3) throw py::value_error("slots: expected three buffers or None");
  float* S[3] = {nullptr, nullptr, nullptr};
  i64 n_slot = -1;
  for (int s = 0; s < 3; ++s) {
    if (slots[s].is_none()) continue;
    const py::array buf = slots[s].cast<py::array>();
    S[s] = data_of<float>(buf, "slot", true);
    if (buf.ndim() != 1 || (n_slot >= 0 && buf.size() != n_slot))
      throw py::value_error("slots: flat buffers of one size");
    n_slot = buf.size();
    a.keep.append(buf);
  }
  const bool needs_s0 = a.optimizer.kind != kSgd || a.optimizer.momentum != 0.0;
  const bool needs_s1 = a.optimizer.kind == kAdam || a.optimizer.kind == kAdamax;
  if ((needs_s0 && !S[0]) || (needs_s1 && !S[1])) throw py::value_error("slots: optimizer state missing");
  for (const auto& r : trainable) a.trainable.push_back({r[0], r[1], r[2]});

  if (metrics.size() > kMaxCountedMetrics) throw py::value_error("at most 8 counted metrics");
  for (const auto& [kind, threshold] : metrics) {
    if (kind < cpu::kCountBinary || kind >= kNumCountKinds || (kind == cpu::kCountSparse) != a.sparse)
      throw py::value_error("metric counts: the kind must match the targets (labels for sparse)");
    a.metrics.push_back({kind, threshold});
  }
  a.loss_weight = get<double>(loss, "weight");
  a.buffers.params = P;
  a.buffers.grads = G;
  a.buffers.n_params = (i64)params.size();
  for (int s = 0; s < 3; ++s) a.buffers.slots[s] = S[s];
  a.buffers.n_slot = n_slot < 0 ? 0 : n_slot;
  return a;
}

struct Batch {
  const float* x = nullptr;
  const float* y = nullptr;
  const int64_t* labels = nullptr;
  const float* weights = nullptr;
  i64 rows = 0;
};

inline i64 check_x(i64 in, const py::array& x) {
  if (x.ndim() != 2 || x.shape(1) != in || x.shape(0) < 1)
    throw py::value_error("x: expected shape (batch>=1, " + std::to_string(in) + "), got " + shape_str(x));
  return x.shape(0);
}

// Every array of a batch checked (dtype, contiguity, shape, label range) before any kernel runs.
// label_width: labels per sample (plan.label_width(): T for the sparse loss over outputs (T, classes)); the
// labels are (rows * label_width,) in [0, out / label_width), and so are the sample weights.
inline Batch batch_args(i64 in, i64 out, bool sparse, const py::array& x, const py::object& y_true,
                        const py::object& labels, const py::object& sample_weight, i64 label_width = 1) {
  Batch b;
  b.rows = check_x(in, x);
  b.x = data_of<float>(x, "x", false);
  const i64 per = sparse ? label_width : 1;
  if (sparse) {
    const py::array a = gradsmith::bindings::array_arg(labels, "labels");
    expect_shape(a, "labels", {b.rows * per});
    b.labels = data_of<int64_t>(a, "labels", false);
    out /= per;
    for (i64 i = 0; i < b.rows * per; ++i)
      if (b.labels[i] < 0 || b.labels[i] >= out)
        throw py::value_error("y_true: label " + std::to_string(b.labels[i]) + " at index " + std::to_string(i) +
                              " is outside [0, " + std::to_string(out) + ")");
  } else {
    const py::array a = gradsmith::bindings::array_arg(y_true, "y_true");
    expect_shape(a, "y_true", {b.rows, out});
    b.y = data_of<float>(a, "y_true", false);
  }
  if (!sample_weight.is_none()) {
    const py::array a = gradsmith::bindings::array_arg(sample_weight, "sample_weight");
    expect_shape(a, "sample_weight", {b.rows * per});
    b.weights = data_of<float>(a, "sample_weight", false);
  }
  return b;
}

// A runner runs one call at a time: its arena, staging buffers and the model's buffers are shared by every
// call, so predict from several Python threads (a web server's workers) must take turns. The GIL is
// released first and the runner's lock taken after, so a thread that waits for the lock never holds the GIL.
class Exclusive {
 public:
  explicit Exclusive(std::mutex& m) : lock_(m) {}

 private:
  py::gil_scoped_release nogil_;  // constructed first, destroyed last
  std::lock_guard<std::mutex> lock_;
};

// One step's metric counts as a Python tuple of ints.
inline py::tuple count_tuple(const int64_t* correct, size_t metrics) {
  py::tuple t(metrics);
  for (size_t m = 0; m < metrics; ++m) t[m] = py::int_(correct[m]);
  return t;
}

// A run of `steps` training steps: its learning rates (checked), and the arrays its losses (steps,) and
// metric counts (steps, metrics) go to.
struct RunArrays {
  RunArrays(const py::array& lrs, i64 steps, size_t metrics)
      : values(steps), counts({(py::ssize_t)steps, (py::ssize_t)metrics}) {
    expect_shape(lrs, "lrs", {steps});
    lr = data_of<double>(lrs, "lrs", false);
    value_data = values.mutable_data();
    count_data = counts.mutable_data();
  }
  py::tuple result() const { return py::make_tuple(values, counts); }

  const double* lr = nullptr;
  py::array_t<double> values;
  py::array_t<int64_t> counts;
  double* value_data = nullptr;
  int64_t* count_data = nullptr;
};

}  // namespace bindings
}  // namespace gradsmith
