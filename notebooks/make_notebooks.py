"""Writes the notebooks of this folder (without outputs) from the cells below: edit here, run it, commit both."""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def nb(cells, path):
    n = new_notebook(cells=[new_markdown_cell(c[3:]) if c.startswith("md:") else new_code_cell(c) for c in cells])
    n.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(n, path)

nb([
"""md:# Backprop through one convolution, by hand

A convolution is three steps: **im2col** copies every receptive field into a column, **one matrix product**
multiplies the filters with all columns at once, and the way back uses the same pieces: the gradient of the
filters is another product, and the gradient of the input is **col2im**, the adjoint of im2col (it adds each
column back where it came from). This notebook does each step with NumPy, then checks it against tinynet's
`Conv2D` and against finite differences.""",
"""import numpy as np

from tinynet import kernels
from tinynet.gradcheck import numerical_derivative
from tinynet.layers import Conv2D

rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 6, 6))         # N, C, H, W
W = rng.standard_normal((4, 3, 3, 3))         # F, C, KH, KW
b = rng.standard_normal(4)
print("x", x.shape, "W", W.shape)""",
"""md:## 1. im2col: one column per output pixel

With a 3x3 kernel, stride 1 and no padding, each 6x6 image gives 4x4 output pixels; each column holds the
3 x 3 x 3 = 27 values its output pixel sees. Row k = (channel, p, q) of the window; column r = (image, i, j).""",
"""cols = kernels.im2col(x, 3, 3, (1, 1), (0, 0, 0, 0))
print("cols", cols.shape)                       # (C*KH*KW, N*OH*OW) = (27, 32)
# column r = 0 is image 0, output pixel (0, 0): its receptive field, flattened channel by channel
assert np.array_equal(cols[:, 0], x[0, :, 0:3, 0:3].reshape(-1))""",
"""md:## 2. Forward: one matrix product

`W.reshape(F, -1) @ cols` gives every output pixel of every filter at once; a reshape and a transpose put it
back in (N, F, OH, OW).""",
"""out = W.reshape(4, -1) @ cols + b[:, None]    # (F, N*OH*OW)
y = out.reshape(4, 2, 4, 4).transpose(1, 0, 2, 3)
conv = Conv2D(4, 3)
conv.build((3, 6, 6), np.float64)
conv.params["W"].data, conv.params["b"].data = W.copy(), b.copy()
assert np.allclose(y, conv.forward(x, training=True))
print("forward matches tinynet's Conv2D")""",
"""md:## 3. Backward: two products and col2im

Given dL/dy (here a random upstream gradient g), the filters' gradient is `dy2 @ cols.T`, the bias's is the
sum over pixels, and the input's is col2im of `W.T @ dy2`. col2im is the adjoint of im2col:
`<im2col(x), c> == <x, col2im(c)>` for every x and c, which is exactly what the chain rule needs.""",
"""g = rng.standard_normal(y.shape)
dy2 = g.transpose(1, 0, 2, 3).reshape(4, -1)   # (F, N*OH*OW)
dW = (dy2 @ cols.T).reshape(W.shape)
db = dy2.sum(axis=1)
dx = kernels.col2im(W.reshape(4, -1).T @ dy2, x.shape, 3, 3, (1, 1), (0, 0, 0, 0))

c = rng.standard_normal(cols.shape)
print("adjoint:", np.sum(cols * c), "==", np.sum(x * kernels.col2im(c, x.shape, 3, 3, (1, 1), (0, 0, 0, 0))))
conv.backward(g)
assert np.allclose(dW, conv.params["W"].grad) and np.allclose(db, conv.params["b"].grad)
print("backward matches tinynet's Conv2D")""",
"""md:## 4. Finite differences agree

For a few entries, nudge the input and the weights by ±h and ±2h, and compare the slope of
L = sum(g * y) with the analytic gradient. The relative error |a - n| / (|a| + |n|) should be ~1e-10.""",
"""def loss():
    return float((conv.forward(x, training=True) * g).sum())

for name, array, analytic in (("x", x, dx), ("W", conv.params["W"].data, dW)):
    idx = [tuple(i) for i in rng.integers(0, array.shape, (4, array.ndim))]
    numeric = np.array([numerical_derivative(loss, array, i, 1e-4) for i in idx])
    a = np.array([analytic[i] for i in idx])
    err = np.linalg.norm(a - numeric) / (np.linalg.norm(a) + np.linalg.norm(numeric))
    print(f"d loss / d {name}: relative error {err:.1e}")
    assert err < 1e-8""",
], str(HERE / "1_conv_backprop_by_hand.ipynb"))

nb([
"""md:# Train the course CNN, evaluate it, read the report

A short run on part of Fashion-MNIST (a few thousand images, two epochs: a minute on two CPU cores), then
the report the command line prints, and the plots. `tinynet train` does all of this for the full data set.""",
"""import numpy as np

import tinynet
from tinynet import models
from tinynet.data import FASHION_MNIST, load_fashion_mnist, to_float
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import Adam
from tinynet.report import build_report, format_text
from tinynet.train import fit

tinynet.use_backend("numba" if tinynet.optional.available("numba") else "numpy")
(x, y), (x_test, y_test) = load_fashion_mnist()
x, y = to_float(x[:6000]), y[:6000]
model = models.build("cnn_dropout02", seed=0)
model.summary()""",
"""history = fit(model, SoftmaxCrossEntropy(), Adam(model.parameters(), lr=2e-3), x, y, epochs=2, batch_size=32,
              validation_split=1 / 6, verbose=False)
print(history.history["loss"], history.history["val_accuracy"])""",
"""md:## The report

Accuracy alone hides which classes are confused: the confusion matrix (rows: true class, columns: predicted)
shows Shirt, T-shirt/top, Pullover and Coat eat into each other, as in every Fashion-MNIST model.""",
"""report = build_report(model, SoftmaxCrossEntropy(), to_float(x_test[:2000]), y_test[:2000],
                      class_names=FASHION_MNIST.class_names)
print(format_text(report))
assert report["test"]["accuracy"] > 0.7""",
"""md:## Plots

The same functions write the PNG files `tinynet train` leaves in its output folder.""",
"""import tempfile
from pathlib import Path

from tinynet import plots
from tinynet.layers.softmax import softmax

out = Path(tempfile.mkdtemp())
probs = softmax(model.predict(to_float(x_test[:1])).astype(np.float64))[0]
written = [plots.history_curves(history.as_dict(), out / "history.png"),
           plots.prediction_bars(x_test[0], probs, FASHION_MNIST.class_names, out / "prediction.png", y_test[0])]
print([p.name for p in written])""",
], str(HERE / "2_train_and_read_the_report.ipynb"))

nb([
"""md:# CPU, GPU and PyTorch: how the benchmark is built, and how to read it

`python -m bench.train_epoch` trains the same model from the same weights on the same batch order on each
backend and on PyTorch, one epoch each, each in a fresh process (so that one run's memory and threads do not
colour the next), after a warm-up that compiles the kernels. It reports images per second, seconds per
epoch, the ratio to PyTorch's time, and the share of this machine's measured float32 matrix-product peak.
Here it runs on a few hundred images; the real runs and their files are in `bench/RESULTS.md`.""",
"""import tinynet
from bench.common import flops_per_image, gemm_peak_gflops
from tinynet import models

flops = flops_per_image(models.build("cnn_dropout02"))
print(f"{flops['train'] / 1e6:.1f} MFLOP per training image; GEMM peak here {gemm_peak_gflops(512, 3):.0f} GFLOP/s")""",
"""md:## One backend on the CPU

`run_tinynet` is what each benchmark process runs. The numbers from 320 images are noisy: they show the
shape of the output, not a result to quote.""",
"""from bench.train_epoch import run_tinynet

r = run_tinynet("numba" if tinynet.optional.available("numba") else "numpy", batch=32, n_images=320, seed=0,
                warmup=2, n_eval=200)
print({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()})""",
"""md:## The GPU

On a machine with an NVIDIA GPU and CuPy the same call runs on the device (`cupy`: each step replayed as a
CUDA graph; `cupy-eager`: every kernel launched from Python). Elsewhere this cell says so and stops.
`python -m bench.launches` counts the kernels a step launches, with or without a GPU.""",
"""from bench.launches import count

print("kernel launches per training step (batch 32):", count("cnn_dropout02", 32))
if "cupy" in tinynet.available_backends():
    print(run_tinynet("cupy", batch=128, n_images=1280, seed=0, warmup=3, n_eval=200))
else:
    print("no GPU here: the GPU half of the benchmark runs with `make gpu-check` on a machine that has one")""",
], str(HERE / "3_cpu_gpu_and_pytorch.ipynb"))
