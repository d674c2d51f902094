"""Counter-based dropout reference: Philox4x32-10 (Random123 constants) in NumPy.

uint32 words are held in uint64 arrays so that mulhilo is one exact 32x32 -> 64-bit product.
"""
import numpy as np

PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57  # round multipliers
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85  # key schedule (Weyl) increments
MASK32 = 0xFFFFFFFF


def _mulhilo(multiplier, x):
    # (hi, lo) 32-bit halves of the 64-bit product multiplier * x
    product = np.uint64(multiplier) * x
    return product >> np.uint64(32), product & np.uint64(MASK32)


def philox4x32(counters, key, rounds=10):
    """counters (n, 4) (or (4,)) uint32, key (2,) uint32 -> same shape uint32.

    round: (hi0, lo0) = mulhilo(M0, c0) ; (hi1, lo1) = mulhilo(M1, c2)
           c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
    between rounds: k0 += W0, k1 += W1 (mod 2^32)."""
    counters = np.asarray(counters, dtype=np.uint32)
    c0, c1, c2, c3 = counters.reshape(-1, 4).astype(np.uint64).T
    k0, k1 = (int(k) for k in np.asarray(key, dtype=np.uint32))
    for r in range(rounds):
        if r > 0:
            k0, k1 = (k0 + PHILOX_W0) & MASK32, (k1 + PHILOX_W1) & MASK32
        hi0, lo0 = _mulhilo(PHILOX_M0, c0)
        hi1, lo1 = _mulhilo(PHILOX_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ np.uint64(k0), lo1, hi0 ^ c3 ^ np.uint64(k1), lo0
    return np.stack([c0, c1, c2, c3], axis=1).astype(np.uint32).reshape(counters.shape)


def dropout_uniforms(shape, seed, offset=0):
    """u in [0, 1) per element, flat row-major index i:
    key = (lo32(seed), hi32(seed)) ; counter = (lo32(i//4), hi32(i//4), lo32(offset), hi32(offset))
    r = philox(counter, key)[i % 4] ; u = (r >> 8) * 2^-24."""
    n = int(np.prod(shape, dtype=np.int64))
    seed, offset = int(seed) & (2**64 - 1), int(offset) & (2**64 - 1)  # as uint64
    blocks = np.arange((n + 3) // 4, dtype=np.uint64)
    counters = np.stack([blocks & np.uint64(MASK32), blocks >> np.uint64(32),
                         np.full_like(blocks, offset & MASK32), np.full_like(blocks, offset >> 32)], axis=1)
    words = philox4x32(counters.astype(np.uint32), [seed & MASK32, seed >> 32])
    r = words.reshape(-1)[:n]  # element i is word i % 4 of block i // 4
    return ((r >> 8).astype(np.float64) * 2.0**-24).reshape(shape)


def dropout_mask(shape, rate, seed, offset=0):
    """bool mask: keep iff u >= rate ; rate in [0, 1)."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate}")
    return dropout_uniforms(shape, seed, offset) >= rate


def dropout_forward(x, rate, seed, offset=0):
    # y = x / (1 - rate) where kept, else 0
    x = np.asarray(x, dtype=np.float64)
    return np.where(dropout_mask(x.shape, rate, seed, offset), x / (1.0 - rate), 0.0)


def dropout_backward(dy, rate, seed, offset=0):
    # dx = dy / (1 - rate) where kept, else 0 (same mask as the forward)
    return dropout_forward(dy, rate, seed, offset)
