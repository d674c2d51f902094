// _core.kinds: every enum that Python also uses, as read-only dicts name -> number,
// built from the one list next to each enum (its GS_*_KINDS macro). Python reads
// the numbers from here and copies none.
#include <pybind11/pybind11.h>

#include "core/matmul_precision.h"
#include "core/optimizer.h"
#include "math/conv.h"
#include "math/elementwise.h"
#include "math/rows.h"
#include "model/cpu_backend.h"
#include "model/layer.h"

namespace py = pybind11;

namespace {

// Collects X(enumerator, name) entries into a dict (in the enum's order) and hands it out read-only.
class KindTable {
 public:
  void add(int number, const char* name) { dict_[py::str(name)] = number; }
  py::object read_only() const { return py::module_::import("types").attr("MappingProxyType")(dict_); }

 private:
  py::dict dict_;
};

#define GS_ADD_KIND(id, name) table.add(gradsmith::id, name);
#define GS_KIND_TABLE(LIST)                        \
  [] {                                             \
    KindTable table;                               \
    LIST(GS_ADD_KIND)                              \
    return table.read_only();                      \
  }()

}  // namespace

void bind_kinds(py::module_& m) {
  py::module_ kinds = m.def_submodule(
      "kinds", "The numbers of the C++ enums Python passes to the kernels: read-only dicts name -> int.");
  kinds.attr("activations") = GS_KIND_TABLE(GS_ACTIVATION_KINDS);
  kinds.attr("losses") = GS_KIND_TABLE(GS_LOSS_KINDS);
  kinds.attr("counts") = GS_KIND_TABLE(GS_COUNT_KINDS);
  kinds.attr("optimizers") = GS_KIND_TABLE(GS_OPTIMIZER_KINDS);
  kinds.attr("clips") = GS_KIND_TABLE(GS_CLIP_KINDS);
  kinds.attr("matmul_precisions") = GS_KIND_TABLE(GS_MATMUL_PRECISIONS);
  kinds.attr("pool_modes") = GS_KIND_TABLE(GS_POOL_MODES);
  kinds.attr("paddings") = GS_KIND_TABLE(GS_PADDINGS);
  // The layer kinds the compiled step has (cpp/model/layers/, registered by name): a tuple of names.
  py::list layers;
  for (const auto& entry : gradsmith::model::layer_registry<gradsmith::model::CpuBackend>()) layers.append(entry.first);
  kinds.attr("layers") = py::tuple(layers);
}
