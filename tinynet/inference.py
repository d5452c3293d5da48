"""Inference in batches: a model's outputs for many samples, on the host, halving the batch on running out of memory.

Used by ``Sequential.predict`` and by evaluation; it needs only what a model offers (``forward``, ``backend``,
``largest_buffer_per_sample``), so it sits below the model and the training loop alike.
"""

from __future__ import annotations

import numpy as np

from . import checks
from .arrays import to_numpy
from .backend import get_backend


def _is_out_of_memory(exc):
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"


def predict_logits(model, x, batch_size=1000):
    """Model outputs for ``x`` (host or device), returned on the host.

    On an out-of-memory error the memory pool is freed, the batch halved and
    the work resumed where it stopped; at batch size 1 the error is re-raised
    with a clear message. Float images above 1 (not scaled) give a warning.
    """
    checks.warn_if_unscaled(x, stacklevel=2)
    return batched_outputs(model, x, batch_size)


# Largest temporary buffer an evaluation batch may make (a convolution's im2col columns): deep_bn_cnn's widest
# convolution needs 0.9 MB per image, so a batch of 1,000 alone took 0.9 GB.
EVAL_BUFFER_BYTES = 128 * 2**20


def batched_outputs(model, x, batch_size):
    """predict_logits without its warning: ``model``'s outputs for ``x`` in batches of at most ``batch_size`` (and
    of at most EVAL_BUFFER_BYTES of temporaries), on the host."""
    backend = get_backend(model.backend)
    batch_size = max(1, min(batch_size, EVAL_BUFFER_BYTES // max(1, model.largest_buffer_per_sample())))
    outs, i = [], 0
    while i < len(x):
        try:
            xb = x[i : i + batch_size]
            out = model.forward(backend.asarray(xb) if isinstance(xb, np.ndarray) else xb, training=False)
            outs.append(to_numpy(out))
            i += len(xb)
        except Exception as exc:
            if not _is_out_of_memory(exc):
                raise
            backend.free_memory()
            if batch_size == 1:
                raise MemoryError(f"out of memory evaluating even one sample on {backend.name}: {exc}") from None
            batch_size = max(1, batch_size // 2)
    return np.concatenate(outs)
