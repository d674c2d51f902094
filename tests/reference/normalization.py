"""Batch normalization reference (Keras 3 BatchNormalization, axis=-1), float64.

Per column j of x (N, C):
  batch statistics: mean_j = sum_i x_ij / N,  var_j = sum_i (x_ij - mean_j)^2 / N   (biased)
  y_ij = gamma_j (x_ij - mean_j) / sqrt(var_j + eps) + beta_j
Gradients, xhat = (x - mean) / sqrt(var + eps):
  dbeta_j = sum_i dy_ij,  dgamma_j = sum_i dy_ij xhat_ij
  through batch statistics:  dx = gamma / sqrt(var + eps) (dy - (dbeta + xhat dgamma) / N)
  through fixed (moving) statistics:  dx = gamma / sqrt(var + eps) dy
"""
import numpy as np


def batch_norm_forward(x, gamma=None, beta=None, epsilon=1e-3, mean=None, variance=None):
    """(y, mean, variance): the batch's statistics when mean and variance are None."""
    x = np.asarray(x, dtype=np.float64)
    if mean is None:
        mean, variance = x.mean(axis=0), x.var(axis=0)
    mean, variance = np.asarray(mean, np.float64), np.asarray(variance, np.float64)
    gamma = np.ones(x.shape[1]) if gamma is None else np.asarray(gamma, np.float64)
    beta = np.zeros(x.shape[1]) if beta is None else np.asarray(beta, np.float64)
    return gamma * (x - mean) / np.sqrt(variance + epsilon) + beta, mean, variance


def batch_norm_backward(dy, x, mean, variance, gamma=None, epsilon=1e-3, batch_statistics=True):
    """(dx, dgamma, dbeta)."""
    dy, x = np.asarray(dy, np.float64), np.asarray(x, np.float64)
    mean, variance = np.asarray(mean, np.float64), np.asarray(variance, np.float64)
    gamma = np.ones(x.shape[1]) if gamma is None else np.asarray(gamma, np.float64)
    rstd = 1.0 / np.sqrt(variance + epsilon)
    xhat = (x - mean) * rstd
    dbeta, dgamma = dy.sum(axis=0), (dy * xhat).sum(axis=0)
    if batch_statistics:
        dx = gamma * rstd * (dy - (dbeta + xhat * dgamma) / x.shape[0])
    else:
        dx = gamma * rstd * dy
    return dx, dgamma, dbeta
