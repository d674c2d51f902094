// _core.CudaRunner: the compiled training step on the GPU (see
// cuda/cuda_runner.h). It takes the same specs as _core.CpuRunner and the
// model's host buffers, which it mirrors in device memory: upload() and
// download() move the weights and optimizer state; every batch is checked
// here, on the host, before anything reaches the device.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bindings/array_checks.h"
#include "bindings/plan_args.h"
#include "cuda/cuda_runner.h"

namespace py = pybind11;
namespace bindings = gradsmith::bindings;
namespace cuda = gradsmith::cuda;
using bindings::data_of;
using bindings::expect_shape;
using i64 = int64_t;

namespace {

class PyCudaRunner {
 public:
  PyCudaRunner(const py::list& layers, const py::dict& loss, const py::dict& optimizer, const py::array& params,
               const py::array& grads, const std::vector<std::array<i64, 3>>& trainable, const py::list& slots,
               const std::vector<std::pair<int, float>>& metrics) {
    bindings::PlanArgs a = bindings::parse_plan_args(layers, loss, optimizer, params, grads, trainable, slots,
                                                     metrics);
    keep_ = a.keep;
    sparse_ = a.sparse;
    host_ = a.buffers;
    const bool has_slot[3] = {host_.slots[0] != nullptr, host_.slots[1] != nullptr, host_.slots[2] != nullptr};
    plan_ = std::make_unique<cuda::CudaRunner>(std::move(a.layers), a.loss, a.loss_weight, a.optimizer,
                                                     host_.n_params, has_slot, host_.n_slot, a.trainable,
                                                     std::move(a.metrics));
  }

  void upload() {
    const bindings::Exclusive call(mu_);
    plan_->upload(host_.params, host_.slots);
  }
  void download() {
    const bindings::Exclusive call(mu_);
    plan_->download(host_.params, host_.slots);
  }
  void set_keep(const py::object& keep) {
    const float* K = nullptr;
    if (!keep.is_none()) {
      const py::array a = bindings::array_arg(keep, "keep");
      K = bindings::data_of<float>(a, "keep", false);
      bindings::expect_shape(a, "keep", {host_.n_params});
    }
    const bindings::Exclusive call(mu_);
    plan_->set_keep(K);  // copied to the device now
  }

  py::tuple train_steps(const py::array& x, const py::object& y_true, const py::object& labels,
                        const py::object& sample_weight, i64 batch_size, const py::array& lrs, int64_t first_step) {
    if (batch_size < 1) throw py::value_error("batch_size must be >= 1");
    const bindings::Batch b = batch_args(x, y_true, labels, sample_weight);
    const i64 steps = (b.rows + batch_size - 1) / batch_size;
    const bindings::RunArrays run(lrs, steps, plan_->num_metrics());
    {
      const bindings::Exclusive call(mu_);
      plan_->train_steps(rows_of(b), b.rows, batch_size, run.lr, first_step, run.value_data, run.count_data);
    }
    return run.result();
  }

  // One step: (loss, counts), and with `output` its predictions, copied in the same locked call.
  py::tuple train_step(const py::array& x, const py::object& y_true, const py::object& labels,
                       const py::object& sample_weight, double lr, int64_t step, bool output) {
    const bindings::Batch b = batch_args(x, y_true, labels, sample_weight);
    double value = 0.0;
    int64_t correct[bindings::kMaxCountedMetrics] = {0};
    py::object y_pred;  // made only when asked for
    float* P = nullptr;
    if (output) {
      py::array_t<float> a({(py::ssize_t)b.rows, (py::ssize_t)plan_->out_features()});
      P = a.mutable_data();
      y_pred = std::move(a);
    }
    {
      const bindings::Exclusive call(mu_);
      plan_->train_steps(rows_of(b), b.rows, b.rows, &lr, step, &value, correct);
      if (output) plan_->output(P);
    }
    if (output) return py::make_tuple(value, counts(correct), y_pred);
    return py::make_tuple(value, counts(correct));
  }

  // Keep (x, y, sample_weight) on the device for train_steps_resident; checked like a batch.
  void set_dataset(const py::array& x, const py::object& y_true, const py::object& labels,
                   const py::object& sample_weight) {
    const bindings::Batch b = batch_args(x, y_true, labels, sample_weight);
    const bindings::Exclusive call(mu_);
    plan_->set_dataset(rows_of(b), b.rows);
    dataset_rows_ = b.rows;
  }

  py::tuple train_steps_resident(const py::array& order, i64 batch_size, const py::array& lrs, int64_t first_step) {
    if (batch_size < 1) throw py::value_error("batch_size must be >= 1");
    if (order.ndim() != 1) throw py::value_error("order: expected a 1-D array of row indices");
    const i64 n = order.shape(0);
    const int64_t* O = data_of<int64_t>(order, "order", false);
    const i64 steps = (n + batch_size - 1) / batch_size;
    const bindings::RunArrays run(lrs, steps, plan_->num_metrics());
    {
      const bindings::Exclusive call(mu_);  // the rows checked against the dataset that is there now
      for (i64 i = 0; i < n; ++i)
        if (O[i] < 0 || O[i] >= dataset_rows_)
          throw py::value_error("order: row " + std::to_string(O[i]) + " is outside the dataset's " +
                                std::to_string(dataset_rows_) + " rows");
      plan_->train_steps_resident(O, n, batch_size, run.lr, first_step, run.value_data, run.count_data);
    }
    return run.result();
  }

  py::tuple test_step(const py::array& x, const py::object& y_true, const py::object& labels,
                      const py::object& sample_weight, bool output) {
    const bindings::Batch b = batch_args(x, y_true, labels, sample_weight);
    int64_t correct[bindings::kMaxCountedMetrics] = {0};
    double value;
    py::object y_pred;  // made only when asked for
    float* P = nullptr;
    if (output) {
      py::array_t<float> a({(py::ssize_t)b.rows, (py::ssize_t)plan_->out_features()});
      P = a.mutable_data();
      y_pred = std::move(a);
    }
    {
      const bindings::Exclusive call(mu_);
      value = plan_->test_step(rows_of(b), b.rows, correct);
      if (output) plan_->output(P);
    }
    if (output) return py::make_tuple(value, counts(correct), y_pred);
    return py::make_tuple(value, counts(correct));
  }

  py::array_t<float> predict(const py::array& x) {
    const i64 rows = bindings::check_x(plan_->in_features(), x);
    const float* X = data_of<float>(x, "x", false);
    py::array_t<float> out({(py::ssize_t)rows, (py::ssize_t)plan_->out_features()});
    float* O = out.mutable_data();
    {
      const bindings::Exclusive call(mu_);
      plan_->predict(X, rows, O);
    }
    return out;
  }

  // The last step's predictions, copied to a new array.
  py::array_t<float> output() {
    // Locked with the GIL held, to size the array from the step that is there: safe, because no call that
    // holds the lock ever waits for the GIL.
    const std::lock_guard<std::mutex> lock(mu_);
    if (plan_->last_rows() == 0) throw py::value_error("no step has run yet");
    py::array_t<float> out({(py::ssize_t)plan_->last_rows(), (py::ssize_t)plan_->out_features()});
    plan_->output(out.mutable_data());
    return out;
  }

 private:
  bindings::Batch batch_args(const py::array& x, const py::object& y_true, const py::object& labels,
                             const py::object& sample_weight) const {
    return bindings::batch_args(plan_->in_features(), plan_->out_features(), sparse_, x, y_true, labels,
                                sample_weight, plan_->label_width());
  }
  static cuda::HostRows rows_of(const bindings::Batch& b) { return {b.x, b.y, b.labels, b.weights}; }
  py::tuple counts(const int64_t* correct) const { return bindings::count_tuple(correct, plan_->num_metrics()); }

  std::unique_ptr<cuda::CudaRunner> plan_;
  std::mutex mu_;  // one call at a time (bindings::Exclusive)
  gradsmith::model::PlanBuffers host_;  // the model's host buffers (kept alive by keep_)
  py::list keep_;
  bool sparse_ = false;
  i64 dataset_rows_ = 0;
};

}  // namespace

void bind_cuda_runner(py::module_& m) {
  py::class_<PyCudaRunner>(m, "CudaRunner")
      .def(py::init<const py::list&, const py::dict&, const py::dict&, const py::array&, const py::array&,
                    const std::vector<std::array<i64, 3>>&, const py::list&,
                    const std::vector<std::pair<int, float>>&>(),
           py::arg("layers"), py::arg("loss"), py::arg("optimizer"), py::arg("params"), py::arg("grads"),
           py::arg("trainable"), py::arg("slots"), py::arg("metrics"))
      .def("upload", &PyCudaRunner::upload, "Copy the host weights and optimizer state to the device.")
      .def("download", &PyCudaRunner::download, "Copy the device weights and optimizer state to the host.")
      .def("set_keep", &PyCudaRunner::set_keep, py::arg("keep"),
           "Copy the pruning mask (float32, laid out as the parameters; None: none) to the device: the fused "
           "update keeps each weight whose mask is 0 at exactly 0. Call again after changing it.")
      .def("train_step", &PyCudaRunner::train_step, py::arg("x"), py::arg("y_true"), py::arg("labels"),
           py::arg("sample_weight"), py::arg("lr"), py::arg("step"), py::arg("output") = false)
      .def("train_steps", &PyCudaRunner::train_steps, py::arg("x"), py::arg("y_true"), py::arg("labels"),
           py::arg("sample_weight"), py::arg("batch_size"), py::arg("lrs"), py::arg("first_step"))
      .def("set_dataset", &PyCudaRunner::set_dataset, py::arg("x"), py::arg("y_true"), py::arg("labels"),
           py::arg("sample_weight"))
      .def("train_steps_resident", &PyCudaRunner::train_steps_resident, py::arg("order"),
           py::arg("batch_size"), py::arg("lrs"), py::arg("first_step"))
      .def("test_step", &PyCudaRunner::test_step, py::arg("x"), py::arg("y_true"), py::arg("labels"),
           py::arg("sample_weight"), py::arg("output") = false)
      .def("predict", &PyCudaRunner::predict, py::arg("x"))
      .def("output", &PyCudaRunner::output);
}
