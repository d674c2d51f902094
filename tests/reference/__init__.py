"""Independent float64 NumPy reference ("the oracle") for every gradsmith.ops kernel.

Plain NumPy, no dependency on gradsmith; the math is written in the comments (Keras 3 conventions).
"""
from .activations import ACTIVATIONS, activation_backward, activation_forward, sigmoid, softmax, softplus
from .conv import conv2d_backward, conv2d_forward, pool2d_backward, pool2d_forward
from .dense import dense_backward, dense_forward
from .gemm import gemm
from .normalization import batch_norm_backward, batch_norm_forward
from .losses import KERAS_EXAMPLES, LOSSES, loss_grad, loss_inputs, loss_value, loss_value_and_grad, sparse_labels
from .optimizers import (adagrad, adam, adamax, adamw, lion, clip_by_global_norm, clip_by_norm, clip_by_value,
                         clip_gradients, global_norm, rmsprop, sgd)
from .random import dropout_backward, dropout_forward, dropout_mask, dropout_uniforms, philox4x32
from .reductions import binary_confusion, count_correct, sum, sum_rows, sum_squares

__all__ = [
    "ACTIVATIONS", "activation_backward", "activation_forward", "sigmoid", "softmax", "softplus",
    "conv2d_backward", "conv2d_forward", "pool2d_backward", "pool2d_forward", "dense_backward", "dense_forward", "gemm", "batch_norm_backward", "batch_norm_forward",
    "KERAS_EXAMPLES", "LOSSES", "loss_grad", "loss_inputs", "loss_value", "loss_value_and_grad", "sparse_labels",
    "adagrad", "adam", "adamax", "adamw", "lion", "clip_by_global_norm", "clip_by_norm", "clip_by_value", "clip_gradients",
    "global_norm", "rmsprop", "sgd",
    "dropout_backward", "dropout_forward", "dropout_mask", "dropout_uniforms", "philox4x32",
    "binary_confusion", "count_correct", "sum", "sum_rows", "sum_squares",
]
