"""GEMM reference: C = alpha * op(A) @ op(B) + beta * C (float64)."""
import numpy as np


def gemm(a, b, transpose_a=False, transpose_b=False, alpha=1.0, beta=0.0, c=None):
    """op(A) is (M,K), op(B) is (K,N).  beta == 0 never reads c (BLAS: NaN in c ignored);
    beta != 0 requires c.  K == 0 gives beta*C (or zeros)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"gemm needs 2-D a and b, got {a.shape} and {b.shape}")
    op_a = a.T if transpose_a else a
    op_b = b.T if transpose_b else b
    if op_a.shape[1] != op_b.shape[0]:
        raise ValueError(f"inner dimensions differ: op(a) {op_a.shape}, op(b) {op_b.shape}")
    result = alpha * (op_a @ op_b)  # np.matmul gives zeros of (M,N) when K == 0
    if beta != 0.0:
        if c is None:
            raise ValueError("beta != 0 requires c")
        c = np.asarray(c, dtype=np.float64)
        if c.shape != result.shape:
            raise ValueError(f"c has shape {c.shape}, expected {result.shape}")
        result = result + beta * c
    return result
