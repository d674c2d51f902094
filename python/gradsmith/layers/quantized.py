"""What Dense and Embedding share once quantized (Keras 3's ``layer.quantize("int8")``): the mode, the
checks of ``quantize``'s arguments, and the config entries (``dtype`` as Keras's QuantizedDTypePolicy and
``quantization_config``) written and read back, so that a quantized layer saves and loads both ways with
Keras. The maths live in the layers (gradsmith.layers.core, gradsmith.layers.embedding) and the formulas in
gradsmith.quantizers."""
from gradsmith import quantizers
from gradsmith.layers.base import assign_weights

__all__ = ["Int8Quantizable"]


class Int8Quantizable:
    """A mixin placed before Layer: ``quantization_mode`` (None or "int8"), as Keras's layers have it."""

    _quantization_mode = None

    @property
    def quantization_mode(self):
        return self._quantization_mode

    def _check_quantize(self, mode, config, type_check, cls):
        what = f"{type(self).__name__} {self.name!r}"
        if type_check and type(self) is not cls:
            raise NotImplementedError(f"Layer {type(self).__name__} does not have a `quantize()` method "
                                      "implemented.")
        quantizers.check_mode(mode, config, what)
        if not self.built:
            raise ValueError(f"{what}: quantize() needs a built layer (build the model first)")
        if self._quantization_mode is not None:
            raise ValueError(f"{what} is already quantized ({self._quantization_mode})")

    def _int8_outputs(self):
        return self.units if hasattr(self, "units") else self.filters

    def _int8_build(self, kernel_shape):
        """kernel (int8, frozen), bias, kernel_scale (one per output column, frozen): the order Keras saves
        them in (a Dense's; a convolution's int8 form, gradsmith's extension, takes the same layout)."""
        outputs = self._int8_outputs()
        self._kernel = self.add_weight("kernel", kernel_shape, "zeros", trainable=False, dtype="int8")
        self._bias = (self.add_weight("bias", (outputs,), self.bias_initializer, self.bias_regularizer)
                      if self.use_bias else None)
        self.kernel_scale_weight = self.add_weight("kernel_scale", (outputs,), "ones", trainable=False)
        self._packed = None

    @property
    def kernel_scale(self):
        return self.kernel_scale_weight.value

    def _set_quantized(self, weight, value):
        assign_weights([weight], [value], f"layer {self.name!r}")

    def _quantization_entries(self):
        """The config entries of a quantized layer (none for a float32 one: its config is unchanged)."""
        mode = self._quantization_mode
        if mode is None:
            return {}
        return {"dtype": quantizers.dtype_policy_config(mode),
                "quantization_config": quantizers.quantization_config(mode)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        what = f"layer {config.get('name')!r}"
        mode = quantizers.dtype_mode(config.pop("dtype", None), what)
        quantizers.check_quantization_config(config.pop("quantization_config", None), mode, what)
        layer = super().from_config(config)
        layer._quantization_mode = mode
        return layer
