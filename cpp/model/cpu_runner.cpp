#include "model/cpu_runner.h"

// Every layer kind of model/layers/, registered for the CPU backend.
#define GS_LAYER_BACKEND ::gradsmith::model::CpuBackend
#include "model/all_layers.h"

#include "cpu/allocation_counter.h"
#include "cpu/profiler.h"

namespace gradsmith {
namespace model {

double CpuRunner::train_step(const float* x, const float* y_true, const int64_t* labels,
                                const float* sample_weight, i64 batch, double lr, int64_t step, int64_t* correct) {
  const uint64_t allocations_before = cpu::allocation_count();
  // The step is a span in the profiler's trace, with its kernels inside.
  const int64_t span = prof::enabled() ? prof::span_begin("train_step") : -1;
  double record[2];
  plan_.train_step(x, y_true, labels, sample_weight, batch, &lr, step, record, correct);
  if (span >= 0) prof::span_end(span);
  last_step_allocations_ = cpu::allocation_count() - allocations_before;
  return record[0] + record[1];
}

void CpuRunner::train_steps(const float* x, const float* y_true, const int64_t* labels,
                               const float* sample_weight, i64 rows, i64 batch, const double* lr, int64_t first_step,
                               double* values, int64_t* correct) {
  const i64 in = in_features(), out = out_features();
  for (i64 s = 0, r = 0; r < rows; ++s, r += batch) {
    const i64 n = r + batch < rows ? batch : rows - r;
    values[s] = train_step(x + r * in, y_true ? y_true + r * out : nullptr, labels ? labels + r : nullptr,
                           sample_weight ? sample_weight + r : nullptr, n, lr[s], first_step + s,
                           correct + s * (i64)num_metrics());
  }
}

double CpuRunner::test_step(const float* x, const float* y_true, const int64_t* labels,
                               const float* sample_weight, i64 batch, int64_t* correct) {
  const int64_t span = prof::enabled() ? prof::span_begin("test_step") : -1;
  double record[2];
  plan_.test_step(x, y_true, labels, sample_weight, batch, record, correct);
  if (span >= 0) prof::span_end(span);
  return record[0] + record[1];
}

}  // namespace model
}  // namespace gradsmith
