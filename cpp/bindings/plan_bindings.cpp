// _core.TrainingPlan: a model's whole training step as one call (see
// model/training_plan.h). Built once by gradsmith.models from the layers,
// loss, optimizer and the model's flat buffers, which it keeps alive; every
// step checks the batch's arrays before any kernel runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "bindings/array_checks.h"
#include "model/training_plan.h"

namespace py = pybind11;
namespace cpu = gradsmith::cpu;
namespace model = gradsmith::model;
using gradsmith::bindings::activation;
using gradsmith::bindings::data_of;
using gradsmith::bindings::expect_shape;
using gradsmith::bindings::shape_str;
using i64 = int64_t;

namespace {

template <class T>
T get(const py::dict& d, const char* key) {
  if (!d.contains(key)) throw py::value_error(std::string("training plan spec: missing '") + key + "'");
  return d[key].cast<T>();
}

class PyTrainingPlan {
 public:
  PyTrainingPlan(const py::list& layers, const py::dict& loss, const py::dict& optimizer, const py::array& params,
                 const py::array& grads, const std::vector<std::array<i64, 3>>& trainable, const py::list& slots,
                 const std::vector<std::pair<int, float>>& metrics) {
    keep_.append(params);
    keep_.append(grads);
    float* P = data_of<float>(params, "params", true);
    float* G = data_of<float>(grads, "grads", true);
    expect_shape(grads, "grads", {(i64)params.size()});

    std::vector<model::LayerSpec> specs;
    for (const py::handle h : layers) {
      const py::dict d = py::reinterpret_borrow<py::dict>(h);
      model::LayerSpec l;
      l.kind = get<int>(d, "kind");
      if (l.kind < model::kDense || l.kind > model::kDropout) throw py::value_error("unknown layer kind");
      l.in = get<i64>(d, "in");
      l.out = get<i64>(d, "out");
      l.act = activation(get<int>(d, "activation"), get<float>(d, "param"));
      if (l.kind == model::kDense) {
        l.kernel = get<i64>(d, "kernel");
        l.bias = get<i64>(d, "bias");
        l.kernel_l1 = get<double>(d, "kernel_l1");
        l.kernel_l2 = get<double>(d, "kernel_l2");
        l.bias_l1 = get<double>(d, "bias_l1");
        l.bias_l2 = get<double>(d, "bias_l2");
      } else if (l.kind == model::kDropout) {
        l.rate = get<double>(d, "rate");
        l.seed = get<uint64_t>(d, "seed");
        const py::array calls = get<py::array>(d, "calls");
        expect_shape(calls, "calls", {1});
        l.calls = data_of<int64_t>(calls, "calls", true);
        keep_.append(calls);
      }
      specs.push_back(l);
    }

    cpu::LossArgs la;
    la.kind = get<int>(loss, "kind");
    if (la.kind < cpu::kMse || la.kind > cpu::kSparseCategoricalXent) throw py::value_error("unknown loss kind");
    la.from_logits = get<bool>(loss, "from_logits");
    la.label_smoothing = get<float>(loss, "label_smoothing");
    la.delta = get<float>(loss, "delta");
    sparse_ = la.kind == cpu::kSparseCategoricalXent;

    model::OptimizerSpec os;
    os.kind = get<int>(optimizer, "kind");
    if (os.kind < cpu::kSgd || os.kind > cpu::kAdagrad) throw py::value_error("unknown optimizer kind");
    os.weight_decay = get<float>(optimizer, "weight_decay");
    os.momentum = get<double>(optimizer, "momentum");
    os.beta_1 = get<double>(optimizer, "beta_1");
    os.beta_2 = get<double>(optimizer, "beta_2");
    os.epsilon = get<double>(optimizer, "epsilon");
    os.rho = get<double>(optimizer, "rho");
    os.nesterov = get<bool>(optimizer, "nesterov");
    os.clip_kind = get<int>(optimizer, "clip_kind");
    if (os.clip_kind < cpu::kClipNone || os.clip_kind > cpu::kClipGlobalNorm) throw py::value_error("unknown clip");
    os.clip = get<float>(optimizer, "clip");

    if (slots.size() != 3) throw py::value_error("slots: expected three buffers or None");
    float* S[3] = {nullptr, nullptr, nullptr};
    i64 n_slot = -1;
    for (int s = 0; s < 3; ++s) {
      if (slots[s].is_none()) continue;
      const py::array a = slots[s].cast<py::array>();
      S[s] = data_of<float>(a, "slot", true);
      if (a.ndim() != 1 || (n_slot >= 0 && a.size() != n_slot)) throw py::value_error("slots: flat buffers of one size");
      n_slot = a.size();
      keep_.append(a);
    }
    const bool needs_s0 = os.kind != cpu::kSgd || os.momentum != 0.0, needs_s1 = os.kind == cpu::kAdam;
    if ((needs_s0 && !S[0]) || (needs_s1 && !S[1])) throw py::value_error("slots: optimizer state missing");
    std::vector<model::TrainableRange> ranges;
    for (const auto& r : trainable) ranges.push_back({r[0], r[1], r[2]});

    std::vector<model::MetricCount> counts;
    if (metrics.size() > kMaxCounted) throw py::value_error("at most 8 counted metrics");
    for (const auto& [kind, threshold] : metrics) {
      if (kind < cpu::kCountBinary || kind > cpu::kCountSparse || (kind == cpu::kCountSparse) != sparse_)
        throw py::value_error("metric counts: the kind must match the targets (labels for sparse)");
      counts.push_back({kind, threshold});
    }
    model::PlanBuffers buffers;
    buffers.params = P;
    buffers.grads = G;
    buffers.n_params = (i64)params.size();
    for (int s = 0; s < 3; ++s) buffers.slots[s] = S[s];
    buffers.n_slot = n_slot < 0 ? 0 : n_slot;
    plan_ = std::make_unique<model::TrainingPlan>(std::move(specs), la, get<double>(loss, "weight"), os, buffers,
                                                  ranges, std::move(counts));
  }

  // (loss, (correct counts...)) for one batch.
  py::tuple train_step(const py::array& x, const py::object& y_true, const py::object& labels,
                       const py::object& sample_weight, double lr, int64_t step) {
    const Batch b = batch_args(x, y_true, labels, sample_weight);
    int64_t correct[kMaxCounted] = {0};
    double value;
    {
      const gradsmith::bindings::TrainingCall call;
      value = plan_->train_step(b.x, b.y, b.labels, b.weights, b.rows, lr, step, correct);
    }
    batch_ = b.rows;
    return py::make_tuple(value, counts(correct));
  }

  // A whole epoch (or any run of batches) in one call: (losses (steps,), counts (steps, metrics)).
  py::tuple train_steps(const py::array& x, const py::object& y_true, const py::object& labels,
                        const py::object& sample_weight, i64 batch_size, const py::array& lrs, int64_t first_step) {
    if (batch_size < 1) throw py::value_error("batch_size must be >= 1");
    const Batch b = batch_args(x, y_true, labels, sample_weight);
    const i64 steps = (b.rows + batch_size - 1) / batch_size;
    expect_shape(lrs, "lrs", {steps});
    const double* L = data_of<double>(lrs, "lrs", false);
    py::array_t<double> values(steps);
    py::array_t<int64_t> correct({(py::ssize_t)steps, (py::ssize_t)plan_->num_metrics()});
    double* V = values.mutable_data();
    int64_t* C = correct.mutable_data();
    {
      const gradsmith::bindings::TrainingCall call;
      plan_->train_steps(b.x, b.y, b.labels, b.weights, b.rows, batch_size, L, first_step, V, C);
    }
    batch_ = b.rows - (steps - 1) * batch_size;
    return py::make_tuple(values, correct);
  }

  // evaluate's step: (loss, (correct counts...)); the weights are not touched.
  py::tuple test_step(const py::array& x, const py::object& y_true, const py::object& labels,
                      const py::object& sample_weight) {
    const Batch b = batch_args(x, y_true, labels, sample_weight);
    int64_t correct[kMaxCounted] = {0};
    double value;
    {
      py::gil_scoped_release nogil;
      value = plan_->test_step(b.x, b.y, b.labels, b.weights, b.rows, correct);
    }
    batch_ = b.rows;
    return py::make_tuple(value, counts(correct));
  }

  // predict's step: a new (batch, out) array of predictions.
  py::array_t<float> predict(const py::array& x) {
    const i64 rows = check_x(x);
    const float* X = gradsmith::bindings::data_of<float>(x, "x", false);
    {
      py::gil_scoped_release nogil;
      plan_->predict(X, rows);
    }
    py::array_t<float> out({(py::ssize_t)rows, (py::ssize_t)plan_->out_features()});
    std::copy(plan_->output(), plan_->output() + rows * plan_->out_features(), out.mutable_data());
    batch_ = rows;
    return out;
  }

  i64 arena_size() const { return plan_->arena_size(); }
  uint64_t last_step_allocations() const { return plan_->last_step_allocations(); }
  i64 batch() const { return batch_; }
  const float* output() const { return plan_->output(); }
  i64 out_features() const { return plan_->out_features(); }

 private:
  static constexpr size_t kMaxCounted = 8;
  struct Batch {
    const float* x = nullptr;
    const float* y = nullptr;
    const int64_t* labels = nullptr;
    const float* weights = nullptr;
    i64 rows = 0;
  };

  i64 check_x(const py::array& x) const {
    const i64 in = plan_->in_features();
    if (x.ndim() != 2 || x.shape(1) != in || x.shape(0) < 1)
      throw py::value_error("x: expected shape (batch>=1, " + std::to_string(in) + "), got " + shape_str(x));
    return x.shape(0);
  }

  // Every array of a batch checked (dtype, contiguity, shape, label range) before any kernel runs.
  Batch batch_args(const py::array& x, const py::object& y_true, const py::object& labels,
                   const py::object& sample_weight) const {
    Batch b;
    b.rows = check_x(x);
    const i64 out = plan_->out_features();
    b.x = data_of<float>(x, "x", false);
    if (sparse_) {
      const py::array a = gradsmith::bindings::array_arg(labels, "labels");
      expect_shape(a, "labels", {b.rows});
      b.labels = data_of<int64_t>(a, "labels", false);
      for (i64 i = 0; i < b.rows; ++i)
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
      expect_shape(a, "sample_weight", {b.rows});
      b.weights = data_of<float>(a, "sample_weight", false);
    }
    return b;
  }

  py::tuple counts(const int64_t* correct) const {
    py::tuple t(plan_->num_metrics());
    for (size_t m = 0; m < plan_->num_metrics(); ++m) t[m] = py::int_(correct[m]);
    return t;
  }

  std::unique_ptr<model::TrainingPlan> plan_;
  py::list keep_;  // the Python buffers the plan points into
  bool sparse_ = false;
  i64 batch_ = 0;
};

}  // namespace

void bind_training_plan(py::module_& m) {
  py::class_<PyTrainingPlan>(m, "TrainingPlan")
      .def(py::init<const py::list&, const py::dict&, const py::dict&, const py::array&, const py::array&,
                    const std::vector<std::array<i64, 3>>&, const py::list&,
                    const std::vector<std::pair<int, float>>&>(),
           py::arg("layers"), py::arg("loss"), py::arg("optimizer"), py::arg("params"), py::arg("grads"),
           py::arg("trainable"), py::arg("slots"), py::arg("metrics"))
      .def("train_step", &PyTrainingPlan::train_step, py::arg("x"), py::arg("y_true"), py::arg("labels"),
           py::arg("sample_weight"), py::arg("lr"), py::arg("step"),
           "One optimizer step; returns (loss, metric counts).")
      .def("train_steps", &PyTrainingPlan::train_steps, py::arg("x"), py::arg("y_true"), py::arg("labels"),
           py::arg("sample_weight"), py::arg("batch_size"), py::arg("lrs"), py::arg("first_step"),
           "Consecutive train_steps over the rows in batches: returns (losses, counts per step).")
      .def("test_step", &PyTrainingPlan::test_step, py::arg("x"), py::arg("y_true"), py::arg("labels"),
           py::arg("sample_weight"), "evaluate's step: returns (loss, metric counts); no weight changes.")
      .def("predict", &PyTrainingPlan::predict, py::arg("x"), "Predictions for a batch, as a new array.")
      .def("output", [](py::object self) {
             // The last step's predictions as a read-only view that keeps the plan alive.
             const PyTrainingPlan& p = self.cast<const PyTrainingPlan&>();
             if (p.batch() == 0) throw py::value_error("no step has run yet");
             py::array a(py::dtype::of<float>(), std::vector<py::ssize_t>{p.batch(), p.out_features()}, {},
                         p.output(), self);
             py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
             return a;
           }, "The last step's predictions, (batch, out): a read-only view, valid until the next step.")
      .def_property_readonly("arena_size", &PyTrainingPlan::arena_size,
                             "Floats in the plan's activation arena; a steady state never changes it.")
      .def_property_readonly("last_step_allocations", &PyTrainingPlan::last_step_allocations,
                             "C++ heap allocations (operator new) made by the last train_step.");
}
