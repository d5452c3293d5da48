"""Integration: real Fashion-MNIST, the course's first CNN, one short epoch."""

import numpy as np
import pytest

from tinynet import models
from tinynet.data import to_float
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import Adam
from tinynet.train import evaluate, fit


def test_two_short_epochs_reach_80_percent(fashion, backend):
    """The issue suggested one epoch on 6,000 images; PyTorch itself gets 75-78% there (measured,
    seeds 0-2), so we give it 2 epochs on 12,000 images: about 82% for tinynet and PyTorch alike."""
    if backend.name == "numpy":
        pytest.skip("NumPy computes what Numba does (parity tests); one real run per compiled backend keeps CI short")
    if getattr(backend.xp, "IS_STANDIN", False):
        pytest.skip("the stand-in runs CUDA kernels one thread at a time (55 s here); its real-data run is "
                    "test_cupy_backend.py's CLI test")
    (xtr, ytr), (xte, yte) = fashion
    model = models.build("cnn_dropout02", seed=0).to(backend.name)
    loss = SoftmaxCrossEntropy()
    fit(model, loss, Adam(model.parameters()), to_float(xtr[:12000]), ytr[:12000], epochs=2, batch_size=32,
        seed=0, verbose=False)
    r = evaluate(model, loss, to_float(xte[:1000]), yte[:1000])
    assert r["accuracy"] >= 0.80, r["accuracy"]
    assert np.isfinite(r["loss"])
