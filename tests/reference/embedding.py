"""Embedding reference in float64: a lookup and its gradient, written as a one-hot matrix product (not the
kernels' gather / bucketed scatter-add), so the kernels are checked by different math.

    y[k, :] = table[ids[k], :]                 = onehot(ids) @ table
    dtable  = sum over k of e_{ids[k]} dy[k]   = onehot(ids)^T @ dy
"""
import numpy as np


def _onehot(ids, vocab):
    ids = np.asarray(ids).reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab):
        raise ValueError("id outside the vocabulary")
    return (ids[:, None] == np.arange(vocab)[None, :]).astype(np.float64)


def embedding_forward(ids, table):
    table = np.asarray(table, dtype=np.float64)
    return (_onehot(ids, table.shape[0]) @ table).reshape(np.shape(ids) + (table.shape[1],))


def embedding_backward(ids, dy, vocab):
    dy = np.asarray(dy, dtype=np.float64)
    return _onehot(ids, vocab).T @ dy.reshape(-1, dy.shape[-1])
