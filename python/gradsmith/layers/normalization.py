"""BatchNormalization and LayerNormalization over the last axis (Keras 3's arguments, weight order and numbers)."""
import numpy as np

from gradsmith import initializers, ops, regularizers
from gradsmith.layers.base import Layer, _initializer_config, _regularizer_config, compiled_penalties

__all__ = ["BatchNormalization", "LayerNormalization"]


class BatchNormalization(Layer):
    """Normalizes each feature (the last axis) to zero mean and unit variance, then scales by ``gamma``
    and shifts by ``beta`` (Keras 3).

    While training (and trainable) it uses the batch's mean and biased variance and moves
    ``moving_mean`` / ``moving_variance`` toward them: ``moving = moving * momentum + batch * (1 -
    momentum)``; otherwise, and when not trainable, it uses the moving statistics. The kernels are
    ``ops.batch_norm_forward`` / ``batch_norm_backward``; the gradient flows through the batch's
    statistics as Keras's does.
    """

    _steps_pointwise = True

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 synchronized=False, renorm=False, renorm_clipping=None, renorm_momentum=0.99, **kwargs):
        super().__init__(**kwargs)
        if renorm or renorm_clipping:
            raise NotImplementedError("BatchNormalization: batch renormalization (renorm=True) is not supported")
        if beta_constraint is not None or gamma_constraint is not None:
            raise NotImplementedError("BatchNormalization: weight constraints are not supported")
        if isinstance(axis, (list, tuple)):
            if len(axis) != 1:
                raise NotImplementedError("BatchNormalization: one axis (the last) is supported")
            axis = axis[0]
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"BatchNormalization: axis must be an integer, got {axis!r}")
        self.axis = int(axis)
        self.momentum = _number(momentum, "momentum")
        self.epsilon = _number(epsilon, "epsilon")
        if not self.epsilon > 0:
            raise ValueError(f"BatchNormalization: epsilon must be > 0, got {epsilon}")
        self.center, self.scale = bool(center), bool(scale)
        self.synchronized = bool(synchronized)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self._cache = None

    def build(self, input_shape):
        rank = len(input_shape)
        if self.axis not in (-1, rank - 1):
            raise NotImplementedError(f"BatchNormalization {self.name!r}: only the last axis can be normalized "
                                      f"(axis=-1), got axis={self.axis} for inputs of rank {rank}")
        c = input_shape[-1]
        if c is None:
            raise ValueError(f"BatchNormalization {self.name!r}: the last axis must be known, got {input_shape}")
        # Keras's order of weights: gamma, beta, moving_mean, moving_variance
        self._gamma = (self.add_weight("gamma", (c,), self.gamma_initializer, self.gamma_regularizer)
                       if self.scale else None)
        self._beta = (self.add_weight("beta", (c,), self.beta_initializer, self.beta_regularizer)
                      if self.center else None)
        self._moving_mean = self.add_weight("moving_mean", (c,), self.moving_mean_initializer, trainable=False)
        self._moving_variance = self.add_weight("moving_variance", (c,), self.moving_variance_initializer,
                                                trainable=False)
        super().build(input_shape)

    @property
    def gamma(self):
        return None if self._gamma is None else self._gamma.value

    @property
    def beta(self):
        return None if self._beta is None else self._beta.value

    @property
    def moving_mean(self):
        return self._moving_mean.value

    @property
    def moving_variance(self):
        return self._moving_variance.value

    def flops(self, batch=1):
        return 2 * batch * self._moving_mean.size  # y = x s + shift

    def forward(self, x, training=False):
        c = self._moving_mean.size
        if x.shape[-1] != c:
            raise ValueError(f"BatchNormalization {self.name!r}: expected inputs with last axis {c}, got shape "
                             f"{x.shape}")
        x2 = x.reshape(-1, c)
        if training and self.trainable and len(x2):
            y, mean, var = ops.batch_norm_forward(x2, self.gamma, self.beta, epsilon=self.epsilon)
            m = np.float32(self.momentum)
            one_minus = np.float32(1.0 - self.momentum)
            self.moving_mean[...] = self.moving_mean * m + mean * one_minus
            self.moving_variance[...] = self.moving_variance * m + var * one_minus
            self._cache = (x2, mean, var, True)
        else:
            mean, var = self.moving_mean.copy(), self.moving_variance.copy()
            y = ops.batch_norm_forward(x2, self.gamma, self.beta, epsilon=self.epsilon, mean=mean, variance=var)
            self._cache = (x2, mean, var, False) if training else None
        return y.reshape(x.shape)

    def backward(self, dy, need_dx=True):
        x2, mean, var, batch_statistics = self._cache
        dx, dgamma, dbeta = ops.batch_norm_backward(dy.reshape(x2.shape), x2, mean, var, self.gamma,
                                                    epsilon=self.epsilon, batch_statistics=batch_statistics,
                                                    need_dx=need_dx)
        if self._gamma is not None:
            self._gamma.grad[...] = dgamma
        if self._beta is not None:
            self._beta.grad[...] = dbeta
        self._add_regularization_grads()
        self._cache = None
        return None if dx is None else dx.reshape(dy.shape)

    def _compiled_config(self, input_shape, offset):
        weights = {"moving_mean": offset(self.moving_mean), "moving_variance": offset(self.moving_variance)}
        if self.scale:
            weights["gamma"] = offset(self.gamma)
        if self.center:
            weights["beta"] = offset(self.beta)
        # A trainable layer trains on the batch's statistics (and moves toward them); a frozen one uses the
        # moving statistics, as Keras.
        return {"kind": "BatchNormalization",
                "numbers": {"epsilon": self.epsilon, "momentum": self.momentum,
                            "batch_statistics": float(self.trainable)},
                "weights": weights,
                "penalties": compiled_penalties(gamma=self.gamma_regularizer if self.scale else None,
                                                beta=self.beta_regularizer if self.center else None)}

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": _initializer_config(self.beta_initializer, "Zeros"),
                "gamma_initializer": _initializer_config(self.gamma_initializer, "Ones"),
                "moving_mean_initializer": _initializer_config(self.moving_mean_initializer, "Zeros"),
                "moving_variance_initializer": _initializer_config(self.moving_variance_initializer, "Ones"),
                "beta_regularizer": _regularizer_config(self.beta_regularizer, self),
                "gamma_regularizer": _regularizer_config(self.gamma_regularizer, self),
                "beta_constraint": None, "gamma_constraint": None, "synchronized": self.synchronized}

    @classmethod
    def from_config(cls, config):
        # Keras 3.4+ writes renorm_momentum beside renorm; it matters only with renorm, which is refused when set.
        return super().from_config({k: v for k, v in config.items() if k != "renorm_momentum"})


def _number(value, what, layer="BatchNormalization"):
    """A float argument from a config: a real number (a string or a list is a ValueError, not a TypeError)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{layer}: {what} must be a number, got {value!r}")
    return float(value)


class LayerNormalization(Layer):
    """Normalizes each sample over its last axis: ``(x - mean) / sqrt(var + epsilon) * gamma + beta`` (Keras 3's
    formula, the biased variance), in NumPy, layer by layer."""

    supports_masking = True
    _steps_pointwise = True

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, rms_scaling=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)) and len(axis) == 1:
            axis = axis[0]
        if axis != -1:
            raise NotImplementedError(f"LayerNormalization: only axis=-1 is supported, got {axis!r}")
        if rms_scaling:
            raise NotImplementedError("LayerNormalization: rms_scaling is not supported (it is deprecated in Keras)")
        if beta_constraint is not None or gamma_constraint is not None:
            raise NotImplementedError("LayerNormalization: weight constraints are not supported")
        self.axis = -1
        self.epsilon = _number(epsilon, "epsilon", "LayerNormalization")
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self._gamma = self._beta = None

    def build(self, input_shape):
        c = input_shape[-1]
        if c is None:
            raise ValueError(f"LayerNormalization {self.name!r}: the last axis of the input must be known")
        if self.scale:
            self._gamma = self.add_weight("gamma", (c,), self.gamma_initializer, self.gamma_regularizer)
        if self.center:
            self._beta = self.add_weight("beta", (c,), self.beta_initializer, self.beta_regularizer)
        super().build(input_shape)

    def forward(self, x, training=False):
        x = np.asarray(x, np.float32)
        mean = x.mean(axis=-1, keepdims=True, dtype=np.float64).astype(np.float32)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True, dtype=np.float64).astype(np.float32)
        inv = (1.0 / np.sqrt(var + np.float32(self.epsilon))).astype(np.float32)
        xhat = (x - mean) * inv
        if training:
            self._saved = (xhat, inv)
        y = xhat * self._gamma.value if self.scale else xhat
        return (y + self._beta.value if self.center else y).astype(np.float32)

    def backward(self, dy, need_dx=True):
        xhat, inv = self._saved
        self._saved = None
        dy = np.asarray(dy, np.float32)
        flat = (-1, dy.shape[-1])
        if self.scale:
            self._gamma.grad[...] = (dy * xhat).reshape(flat).sum(axis=0, dtype=np.float64)
        if self.center:
            self._beta.grad[...] = dy.reshape(flat).sum(axis=0, dtype=np.float64)
        self._add_regularization_grads()
        if not need_dx:
            return None
        g = dy * self._gamma.value if self.scale else dy
        # dx = inv * (g - mean(g) - xhat * mean(g * xhat)) over the last axis
        dx = inv * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))
        return dx.astype(np.float32)

    def get_config(self):
        return {**super().get_config(), "axis": [self.axis], "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale, "rms_scaling": False,
                "beta_initializer": _initializer_config(self.beta_initializer, "Zeros"),
                "gamma_initializer": _initializer_config(self.gamma_initializer, "Ones"),
                "beta_regularizer": _regularizer_config(self.beta_regularizer, self),
                "gamma_regularizer": _regularizer_config(self.gamma_regularizer, self),
                "beta_constraint": None, "gamma_constraint": None}
