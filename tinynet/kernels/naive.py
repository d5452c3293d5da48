"""Plain-loop versions of whole ops, one output number at a time.

Far too slow to train with; they exist so the fast paths have something
obviously correct to be tested against.
"""

from __future__ import annotations

import numpy as np

from ..geometry import output_size


def conv2d_naive(x, W, b, stride=(1, 1), pads=(0, 0, 0, 0)):
    """x (N, C, H, W), W (F, C, KH, KW), b (F,) -> y (N, F, OH, OW)."""
    n, c, h, w = x.shape
    f, _, kh, kw = W.shape
    oh, ow = output_size((h, w), (kh, kw), stride, pads)
    xpad = np.zeros((n, c, h + pads[0] + pads[1], w + pads[2] + pads[3]), dtype=x.dtype)
    xpad[:, :, pads[0] : pads[0] + h, pads[2] : pads[2] + w] = x
    y = np.zeros((n, f, oh, ow), dtype=x.dtype)
    for i in range(n):
        for o in range(f):
            for r in range(oh):
                for s in range(ow):
                    r0, s0 = r * stride[0], s * stride[1]
                    y[i, o, r, s] = np.sum(xpad[i, :, r0 : r0 + kh, s0 : s0 + kw] * W[o]) + b[o]
    return y


def maxpool2d_naive(x, kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0)):
    """x (N, C, H, W) -> y (N, C, OH, OW), padding counts as -inf."""
    n, c, h, w = x.shape
    kh, kw = kernel
    oh, ow = output_size((h, w), kernel, stride, pads)
    xpad = np.full((n, c, h + pads[0] + pads[1], w + pads[2] + pads[3]), -np.inf, dtype=x.dtype)
    xpad[:, :, pads[0] : pads[0] + h, pads[2] : pads[2] + w] = x
    y = np.zeros((n, c, oh, ow), dtype=x.dtype)
    for i in range(n):
        for ch in range(c):
            for r in range(oh):
                for s in range(ow):
                    r0, s0 = r * stride[0], s * stride[1]
                    y[i, ch, r, s] = xpad[i, ch, r0 : r0 + kh, s0 : s0 + kw].max()
    return y
