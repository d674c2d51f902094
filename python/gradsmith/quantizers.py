"""Int8 quantization as Keras 3 does it (``keras.quantizers``, ``model.quantize("int8")``).

* ``abs_max_quantize(x, axis)``: Keras's AbsMaxQuantizer in float32 NumPy (its ``to_numpy=True`` path, the one
  ``Dense.quantize`` / ``Embedding.quantize`` use for weights): ``scale = 127 / (max|x| + 1e-7)`` along
  ``axis``, ``q = clip(round_half_even(x * scale), -127, 127)`` as int8. The value stored is the multiplier
  ``scale`` (not its inverse): dequantizing divides, ``x ~ q / scale``.
* A quantized layer's config says so as Keras writes it: ``dtype`` is the QuantizedDTypePolicy
  ``{"mode": "int8", "source_name": "float32"}`` and ``quantization_config`` Keras's default
  Int8QuantizationConfig; ``dtype_mode`` reads either form back (a string such as ``"int8_from_float32"``
  too) and refuses the quantizers gradsmith does not run.
"""
import numpy as np

__all__ = ["abs_max_quantize", "QUANTIZATION_MODES"]

QUANTIZATION_MODES = ("int8",)
_EPSILON = 1e-7  # keras.config.epsilon(), the AbsMaxQuantizer default


def abs_max_quantize(x, axis, value_range=(-127, 127), epsilon=_EPSILON):
    """(int8 values, float32 scale with ``axis`` kept as 1) of float32 ``x``, Keras's formula and rounding."""
    x = np.asarray(x, np.float32)
    amax = np.max(np.abs(x), axis=axis, keepdims=True)
    scale = np.divide(np.float32(value_range[1]), np.add(amax, np.float32(epsilon)), dtype=np.float32)
    q = np.clip(np.round(np.multiply(x, scale)), value_range[0], value_range[1]).astype(np.int8)
    return q, scale.astype(np.float32)


def _object(module, class_name, config):
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def dtype_policy_config(mode):
    """The ``dtype`` entry of a layer's config: Keras's DTypePolicy, or its QuantizedDTypePolicy for ``mode``."""
    if mode is None:
        return _object("keras", "DTypePolicy", {"name": "float32"})
    return _object("keras.dtype_policies", "QuantizedDTypePolicy", {"mode": mode, "source_name": "float32"})


def quantization_config(mode):
    """The ``quantization_config`` entry Keras 3.15 writes for a layer quantized with ``quantize(mode)``."""
    if mode is None:
        return None
    abs_max = _object("keras.quantizers", "AbsMaxQuantizer",
                      {"value_range": [-127, 127], "epsilon": _EPSILON, "output_dtype": "int8"})
    return _object("keras.quantizers", "Int8QuantizationConfig",
                   {"weight_quantizer": None, "activation_quantizer": abs_max})


def dtype_mode(dtype, what):
    """The quantization mode (None or "int8") of a config's ``dtype``: a name ("float32",
    "int8_from_float32"), a DTypePolicy or a QuantizedDTypePolicy; anything else raises ValueError."""
    if dtype is None or dtype == "float32":
        return None
    if isinstance(dtype, str):
        if dtype == "int8_from_float32":
            return "int8"
        raise ValueError(f"{what} uses dtype {dtype!r}; gradsmith supports float32 and int8_from_float32")
    if isinstance(dtype, dict):
        cfg = dtype.get("config") or {}
        if dtype.get("class_name") == "QuantizedDTypePolicy":
            if cfg.get("mode") == "int8" and cfg.get("source_name", "float32") == "float32":
                return "int8"
            raise ValueError(f"{what} is quantized with mode {cfg.get('mode')!r} from {cfg.get('source_name')!r}; "
                             "gradsmith runs int8 from float32 only")
        if cfg.get("name") == "float32":
            return None
        return dtype_mode(cfg.get("name"), what)
    raise ValueError(f"{what} uses dtype {dtype!r}; gradsmith supports float32 and int8_from_float32")


def check_quantization_config(value, mode, what):
    """A config's ``quantization_config`` must be unset, or Keras's default Int8QuantizationConfig (the
    AbsMaxQuantizer of range [-127, 127], epsilon 1e-7, no weight quantizer) on an int8 layer."""
    if value is None:
        return
    ok = isinstance(value, dict) and value.get("class_name") == "Int8QuantizationConfig" and mode == "int8"
    if ok:
        cfg = value.get("config") or {}
        act = cfg.get("activation_quantizer")
        act_cfg = (act or {}).get("config") or {} if isinstance(act, dict) else {}
        ok = cfg.get("weight_quantizer") is None and isinstance(act, dict) and \
            act.get("class_name") == "AbsMaxQuantizer" and \
            list(act_cfg.get("value_range", [-127, 127])) == [-127, 127] and \
            float(act_cfg.get("epsilon", _EPSILON)) == _EPSILON and act_cfg.get("axis") in (None, -1, [-1], (-1,))
    if not ok:
        raise ValueError(f"{what} sets quantization_config={value!r}; gradsmith runs Keras's default int8 "
                         "quantization only (AbsMaxQuantizer, value_range (-127, 127), epsilon 1e-7)")


def check_mode(mode, config, what):
    """``quantize(mode, config=None)``'s arguments: mode "int8" and no custom config."""
    if config is not None:
        raise NotImplementedError(f"{what}: quantize(config=...) is not supported; gradsmith runs Keras's "
                                  "default int8 quantization (quantize('int8'))")
    if mode not in QUANTIZATION_MODES:
        raise NotImplementedError(f"{what}: quantization mode {mode!r} is not supported; gradsmith supports "
                                  f"{', '.join(QUANTIZATION_MODES)}")
