"""Dense layer reference (Keras kernel layout (in, units))."""
import numpy as np

from .activations import activation_backward, activation_forward


def dense_forward(x, kernel, bias=None, activation="linear", **params):
    """z = x @ kernel + bias ; y = act(z).  Returns (y, z)."""
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    z = x @ kernel
    if bias is not None:
        z = z + np.asarray(bias, dtype=np.float64)
    return activation_forward(z, activation, **params), z


def dense_backward(dy, x, kernel, z, activation="linear", **params):
    """dz = dy * act'(z) (softmax: row-wise rule) ; dkernel = x^T dz ; dbias = sum_rows dz ; dx = dz kernel^T.
    Returns (dx, dkernel, dbias)."""
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    dz = activation_backward(dy, z, activation, **params)
    return dz @ kernel.T, x.T @ dz, np.sum(dz, axis=0)
