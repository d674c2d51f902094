// _core.CpuRunner: a model's training step on the CPU as ONE call: model::Plan (model/plan.h: forward,
// loss, metric counts, backward, penalties, the fused optimizer) with the CPU backend, with no Python in
// between and no allocation once the arena is sized. Built once by gradsmith.compiled_step from the
// layers' descriptions, the loss, the optimizer and the model's flat buffers, which it keeps alive; every
// call checks the batch's arrays before any kernel runs, then releases the GIL.
//
// Every kernel is the one gradsmith.ops calls, with the same arguments, so a step through the plan gives
// bit-identical weights to the layer-by-layer Python path (tests/test_compiled_step.py checks this).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bindings/array_checks.h"
#include "bindings/plan_args.h"
#include "cpu/allocation_counter.h"
#include "cpu/profiler.h"
#include "model/cpu_backend.h"
#include "model/plan.h"

namespace py = pybind11;
namespace cpu = gradsmith::cpu;
namespace bindings = gradsmith::bindings;
namespace model = gradsmith::model;
using gradsmith::bindings::data_of;
using gradsmith::bindings::expect_shape;
using gradsmith::bindings::shape_str;
using i64 = int64_t;

namespace {

// model::RankSums through a Python callable (gradsmith._data_parallel: mpi4py's Allreduce in place), called
// with the GIL taken back in the middle of a step. While a data-parallel step runs, no other thread may call
// this runner (a call waiting for the runner's lock while holding the GIL would wait forever).
struct PyRankSums : model::RankSums {
  PyRankSums(const py::object& fn, i64 global_rows) : fn_(fn) { rows = global_rows; }
  void sum(double* x, i64 n) const override {
    const py::gil_scoped_acquire gil;
    const py::capsule owner(x, [](void*) {});  // a view: the array must not free the scratch
    fn_(py::array_t<double>({(py::ssize_t)n}, {(py::ssize_t)sizeof(double)}, x, owner));
  }
  const py::object& fn_;
};

class CpuRunner {
 public:
  CpuRunner(const py::list& layers, const py::dict& loss, const py::dict& optimizer, const py::array& params,
            const py::array& grads, const std::vector<std::array<i64, 3>>& trainable, const py::list& slots,
            const std::vector<std::pair<int, float>>& metrics) {
    bindings::PlanArgs a = bindings::parse_plan_args(layers, loss, optimizer, params, grads, trainable, slots,
                                                     metrics);
    keep_ = a.keep;
    sparse_ = a.sparse;
    n_params_ = (i64)params.size();
    plan_ = std::make_unique<model::Plan<model::CpuBackend>>(a.layers, a.loss, a.loss_weight, a.optimizer, a.buffers,
                                                             a.trainable, std::move(a.metrics));
  }

  // (loss, (correct counts...)) for one batch, and with `output` its predictions (copied in the same call,
  // so no other thread's call comes between).
  py::tuple train_step(const py::array& x, const py::object& y_true, const py::object& labels,
                       const py::object& sample_weight, double lr, int64_t step, bool output) {
    const Batch b = batch_args(x, y_true, labels, sample_weight);
    int64_t correct[kMaxCounted] = {0};
    double value;
    py::object y_pred;  // made only when asked for: an array costs a train_on_batch call a few percent
    float* P = output ? predictions_into(b.rows, &y_pred) : nullptr;
    {
      const bindings::Exclusive call(mu_);
      const gradsmith::cpu::DenormalsAreZero daz;
      value = step_on(b.x, b.y, b.labels, b.weights, b.rows, lr, step, correct);
      batch_ = b.rows;
      if (P) std::copy(plan_->output(), plan_->output() + b.rows * plan_->out_features(), P);
    }
    if (output) return py::make_tuple(value, counts(correct), y_pred);
    return py::make_tuple(value, counts(correct));
  }

  // train_step's first half (model::Plan::gradient_step): the batch's gradients, times `scale`, left in the
  // gradient buffer, no weight changed; (loss, (correct counts...)), not scaled. Data-parallel training
  // scales by the rank's share of the global batch, gives the share's first row there (Dropout's masks),
  // all-reduces the gradient buffer, then calls apply_gradients.
  py::tuple gradient_step(const py::array& x, const py::object& y_true, const py::object& labels,
                          const py::object& sample_weight, double scale, i64 first_row,
                          const py::object& rank_sum, i64 global_rows) {
    const PyRankSums ranks(rank_sum, global_rows);
    const Batch b = batch_args(x, y_true, labels, sample_weight);
    int64_t correct[kMaxCounted] = {0};
    double record[2];
    {
      const bindings::Exclusive call(mu_);
      const gradsmith::cpu::DenormalsAreZero daz;
      const int64_t span = gradsmith::prof::enabled() ? gradsmith::prof::span_begin("gradient_step") : -1;
      if (scale == 1.0 && first_row == 0 && rank_sum.is_none())
        plan_->gradient_step(b.x, b.y, b.labels, b.weights, b.rows, record, correct);
      else
        plan_->scaled_gradient_step(b.x, b.y, b.labels, b.weights, b.rows, (float)scale, first_row,
                                    rank_sum.is_none() ? nullptr : &ranks, record, correct);
      if (span >= 0) gradsmith::prof::span_end(span);
      batch_ = b.rows;
    }
    return py::make_tuple(record[0] + record[1], counts(correct));
  }

  // train_step's second half: the fused optimizer update from the gradient buffer as it is now.
  void apply_gradients(double lr, int64_t step) {
    const bindings::Exclusive call(mu_);
    const gradsmith::cpu::DenormalsAreZero daz;
    const int64_t span = gradsmith::prof::enabled() ? gradsmith::prof::span_begin("apply_gradients") : -1;
    plan_->apply_gradients(&lr, step);
    if (span >= 0) gradsmith::prof::span_end(span);
  }

  // A whole epoch (or any run of batches) in one call: (losses (steps,), counts (steps, metrics)).
  py::tuple train_steps(const py::array& x, const py::object& y_true, const py::object& labels,
                        const py::object& sample_weight, i64 batch_size, const py::array& lrs, int64_t first_step) {
    if (batch_size < 1) throw py::value_error("batch_size must be >= 1");
    const Batch b = batch_args(x, y_true, labels, sample_weight);
    const i64 steps = (b.rows + batch_size - 1) / batch_size;
    const bindings::RunArrays run(lrs, steps, plan_->num_metrics());
    {
      const bindings::Exclusive call(mu_);
      const gradsmith::cpu::DenormalsAreZero daz;
      // Consecutive batches of batch_size rows (the last may be shorter); lr[s] is step s's learning rate
      // and first_step + s its Keras step.
      const i64 in = plan_->in_features(), out = plan_->out_features(), m = (i64)plan_->num_metrics();
      for (i64 s = 0, r = 0; r < b.rows; ++s, r += batch_size) {
        const i64 n = r + batch_size < b.rows ? batch_size : b.rows - r;
        const i64 lw = plan_->label_width();  // labels (and weights) per sample: T over a time axis, else 1
        run.value_data[s] = step_on(b.x + r * in, b.y ? b.y + r * out : nullptr,
                                    b.labels ? b.labels + r * lw : nullptr, b.weights ? b.weights + r * lw : nullptr,
                                    n, run.lr[s], first_step + s,
                                    run.count_data + s * m);
      }
      batch_ = b.rows - (steps - 1) * batch_size;
    }
    return run.result();
  }

  // evaluate's step: (loss, (correct counts...)[, predictions]); the weights are not touched.
  py::tuple test_step(const py::array& x, const py::object& y_true, const py::object& labels,
                      const py::object& sample_weight, bool output) {
    const Batch b = batch_args(x, y_true, labels, sample_weight);
    int64_t correct[kMaxCounted] = {0};
    double value;
    py::object y_pred;  // made only when asked for: an array costs a train_on_batch call a few percent
    float* P = output ? predictions_into(b.rows, &y_pred) : nullptr;
    {
      const bindings::Exclusive call(mu_);
      const int64_t span = gradsmith::prof::enabled() ? gradsmith::prof::span_begin("test_step") : -1;
      double record[2];
      plan_->test_step(b.x, b.y, b.labels, b.weights, b.rows, record, correct);
      if (span >= 0) gradsmith::prof::span_end(span);
      value = record[0] + record[1];
      batch_ = b.rows;
      if (P) std::copy(plan_->output(), plan_->output() + b.rows * plan_->out_features(), P);
    }
    if (output) return py::make_tuple(value, counts(correct), y_pred);
    return py::make_tuple(value, counts(correct));
  }

  // predict's step: a new (batch, out) array of predictions.
  py::array_t<float> predict(const py::array& x) {
    const i64 rows = check_x(x);
    const float* X = gradsmith::bindings::data_of<float>(x, "x", false);
    py::array_t<float> out = predictions(rows);
    float* O = out.mutable_data();
    {
      const bindings::Exclusive call(mu_);
      plan_->predict(X, rows);
      std::copy(plan_->output(), plan_->output() + rows * plan_->out_features(), O);
      batch_ = rows;
    }
    return out;
  }

  i64 arena_size() const { return plan_->arena_size(); }
  uint64_t last_step_allocations() const { return last_step_allocations_; }

  // The pruning mask (gradsmith.pruning): a float32 array laid out as the parameters, or None. Kept (the plan
  // reads it at every update); the caller changes its values in place between steps.
  void set_keep(const py::object& keep) {
    const bindings::Exclusive exclusive(mu_);
    if (keep.is_none()) {
      plan_->set_keep(nullptr);
      keep_mask_ = py::none();
      return;
    }
    const py::array a = bindings::array_arg(keep, "keep");
    const float* K = bindings::data_of<float>(a, "keep", false);
    bindings::expect_shape(a, "keep", {n_params_});
    keep_mask_ = keep;
    plan_->set_keep(K);
  }
  // The last step's predictions, copied. Locked with the GIL held, to size the array from the step that is
  // there: safe, because no call that holds the lock ever waits for the GIL.
  py::array_t<float> output() {
    const std::lock_guard<std::mutex> lock(mu_);
    if (batch_ == 0) throw py::value_error("no step has run yet");
    py::array_t<float> out({(py::ssize_t)batch_, (py::ssize_t)plan_->out_features()});
    std::copy(plan_->output(), plan_->output() + batch_ * plan_->out_features(), out.mutable_data());
    return out;
  }
  i64 out_features() const { return plan_->out_features(); }

 private:
  static constexpr size_t kMaxCounted = bindings::kMaxCountedMetrics;
  using Batch = bindings::Batch;
  i64 check_x(const py::array& x) const { return bindings::check_x(plan_->in_features(), x); }
  Batch batch_args(const py::array& x, const py::object& y_true, const py::object& labels,
                   const py::object& sample_weight) const {
    return bindings::batch_args(plan_->in_features(), plan_->out_features(), sparse_, x, y_true, labels,
                                sample_weight, plan_->label_width());
  }

  // A (rows, out) array for predictions, made while the GIL is held.
  py::array_t<float> predictions(i64 rows) const {
    return py::array_t<float>({(py::ssize_t)rows, (py::ssize_t)plan_->out_features()});
  }
  // The same, kept in *owner; returns its data.
  float* predictions_into(i64 rows, py::object* owner) const {
    py::array_t<float> a = predictions(rows);
    float* data = a.mutable_data();
    *owner = std::move(a);
    return data;
  }

  py::tuple counts(const int64_t* correct) const { return bindings::count_tuple(correct, plan_->num_metrics()); }


  // One training step (the GIL released): its loss value with the penalties; the counts to `correct`. The
  // step is a span in the profiler's trace, with its kernels inside; the operator new calls it made are
  // counted (a steady state makes none).
  double step_on(const float* x, const float* y, const int64_t* labels, const float* weights, i64 rows, double lr,
                 int64_t step, int64_t* correct) {
    const uint64_t allocations_before = gradsmith::cpu::allocation_count();
    const int64_t span = gradsmith::prof::enabled() ? gradsmith::prof::span_begin("train_step") : -1;
    double record[2];
    plan_->train_step(x, y, labels, weights, rows, &lr, step, record, correct);
    if (span >= 0) gradsmith::prof::span_end(span);
    last_step_allocations_ = gradsmith::cpu::allocation_count() - allocations_before;
    return record[0] + record[1];
  }

  std::unique_ptr<model::Plan<model::CpuBackend>> plan_;
  std::mutex mu_;  // one call at a time (bindings::Exclusive)
  uint64_t last_step_allocations_ = 0;
  py::list keep_;  // the Python buffers the plan points into
  py::object keep_mask_ = py::none();  // the pruning mask the plan points into, or None
  i64 n_params_ = 0;
  bool sparse_ = false;
  i64 batch_ = 0;
};

}  // namespace

void bind_cpu_runner(py::module_& m) {
  py::class_<CpuRunner>(m, "CpuRunner")
      .def(py::init<const py::list&, const py::dict&, const py::dict&, const py::array&, const py::array&,
                    const std::vector<std::array<i64, 3>>&, const py::list&,
                    const std::vector<std::pair<int, float>>&>(),
           py::arg("layers"), py::arg("loss"), py::arg("optimizer"), py::arg("params"), py::arg("grads"),
           py::arg("trainable"), py::arg("slots"), py::arg("metrics"))
      .def("train_step", &CpuRunner::train_step, py::arg("x"), py::arg("y_true"), py::arg("labels"),
           py::arg("sample_weight"), py::arg("lr"), py::arg("step"), py::arg("output") = false,
           "One optimizer step; returns (loss, metric counts), and the predictions with output=True.")
      .def("gradient_step", &CpuRunner::gradient_step, py::arg("x"), py::arg("y_true"), py::arg("labels"),
           py::arg("sample_weight"), py::arg("scale") = 1.0, py::arg("first_row") = 0, py::arg("rank_sum") = py::none(),
           py::arg("global_rows") = 0,
           "train_step without the update: the batch's gradients times scale left in the gradient buffer, "
           "Dropout drawing the masks of rows first_row.. of a global batch of global_rows rows; rank_sum(a), "
           "given, sums a float64 array over the ranks in place (BatchNormalization's statistics); returns "
           "(loss, metric counts).")
      .def("set_keep", &CpuRunner::set_keep, py::arg("keep"),
           "The pruning mask (float32, laid out as the parameters; None: none): the fused update keeps each weight "
           "whose mask is 0 at exactly 0. The array is kept; change its values in place between steps.")
      .def("apply_gradients", &CpuRunner::apply_gradients, py::arg("lr"), py::arg("step"),
           "train_step's update alone: the fused optimizer step from the gradient buffer as it is.")
      .def("train_steps", &CpuRunner::train_steps, py::arg("x"), py::arg("y_true"), py::arg("labels"),
           py::arg("sample_weight"), py::arg("batch_size"), py::arg("lrs"), py::arg("first_step"),
           "Consecutive train_steps over the rows in batches: returns (losses, counts per step).")
      .def("test_step", &CpuRunner::test_step, py::arg("x"), py::arg("y_true"), py::arg("labels"),
           py::arg("sample_weight"), py::arg("output") = false,
           "evaluate's step: returns (loss, metric counts[, predictions]); no weight changes.")
      .def("predict", &CpuRunner::predict, py::arg("x"), "Predictions for a batch, as a new array.")
      .def("output", &CpuRunner::output,
           "The last step's predictions, (batch, out), as a new array (the arena is the runner's: a view of it "
           "would change with the next step, or dangle once the arena grows).")
      .def_property_readonly("arena_size", &CpuRunner::arena_size,
                             "Floats in the plan's activation arena; a steady state never changes it.")
      .def_property_readonly("last_step_allocations", &CpuRunner::last_step_allocations,
                             "C++ heap allocations (operator new) made by the last train_step.");
}
