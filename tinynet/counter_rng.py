"""The counter-based random generator behind Dropout's masks and data augmentation's draws.

Call number ``calls`` of the stream ``seed`` uses key = splitmix64(seed + calls * golden), and its i-th word is
the top 32 bits of splitmix64(key + (i + 1) * golden). No state but (seed, calls): every backend (NumPy here,
Numba and CUDA in their kernels) draws the same bits, and a checkpoint restores a stream with two integers.
A leaf module: it imports nothing from tinynet.
"""

from __future__ import annotations

import numpy as np

GOLDEN = 0x9E3779B97F4A7C15
_MASK64 = 2**64 - 1


def splitmix64(z):
    """SplitMix64's output function, on uint64 arrays (they wrap around, as C's unsigned arithmetic does)."""
    z = (z ^ (z >> 30)) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> 27)) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> 31)


def dropout_key(seed, calls):
    """The key of call ``calls``: splitmix64(seed + calls * golden), in Python integers."""
    return int(splitmix64(np.array([(seed + calls * GOLDEN) & _MASK64], dtype=np.uint64))[0])


def counter_bits(seed, calls, n):
    """n random uint64 words, 32 random bits each (the top 32 bits of splitmix64): call ``calls`` of the stream
    ``seed``. Dropout draws the same way (in its kernels); data augmentation draws here, on the host."""
    key = dropout_key(seed, calls)
    return splitmix64(np.arange(1, n + 1, dtype=np.uint64) * np.uint64(GOLDEN) + np.uint64(key)) >> np.uint64(32)


def dropout_threshold(rate):
    """The uint32 threshold the generator's bits are compared with: a word below it drops its element."""
    return min(round(rate * 2**32), 2**32 - 1)
