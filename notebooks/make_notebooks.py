"""Writes the notebooks of this folder, and their solutions in solutions/, from the cells below (without outputs).

Edit here, run it (`python notebooks/make_notebooks.py`), commit both; tests/test_notebooks.py checks that the stored
notebooks are what this writes. A cell is a string: "md:..." is markdown, "check:..." a code cell that checks an
exercise, anything else a code cell. An exercise is a code cell holding its solution between the lines
`### BEGIN SOLUTION` and `### END SOLUTION` (nbgrader's markers): the student's notebook gets `# YOUR CODE HERE` and
`raise NotImplementedError` in their place, the copy in solutions/ the solution. Exercise and check cells are tagged
("exercise", "check") in their metadata. Cell ids are the notebook's number and the cell's index, so writing an
unchanged notebook again changes nothing.
"""

import re
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
SOLUTION = re.compile(r"^(?P<indent> *)### BEGIN SOLUTION\n.*?^ *### END SOLUTION$", re.M | re.S)
MARKER = re.compile(r"^ *### (BEGIN|END) SOLUTION\n", re.M)
# What a student sees when the check runs before the exercise is done ("Run All" stops there)
STUB = "fill in the exercise above, then run this check (solutions: notebooks/solutions/)"


def student(source):
    return SOLUTION.sub(lambda m: f"{m['indent']}# YOUR CODE HERE\n{m['indent']}raise NotImplementedError({STUB!r})", source)


def solution(source):
    return MARKER.sub("", source + "\n").rstrip("\n")


def cell(text, index, number, solved):
    if text.startswith("md:"):
        c = new_markdown_cell(text[3:])
    elif text.startswith("check:"):
        c = new_code_cell(text[6:], metadata={"tags": ["check"]})
    else:
        exercise = SOLUTION.search(text) is not None
        c = new_code_cell((solution if solved else student)(text), metadata={"tags": ["exercise"]} if exercise else {})
    c.id = f"nb{number}-{index:02d}"  # stable: derived from the notebook and the cell's place in it
    return c


def has_exercises(cells):
    return any(SOLUTION.search(text) for text in cells)


def notebook(name, cells, solved=False):
    number = name.split("_")[0]
    n = new_notebook(cells=[cell(text, i, number, solved) for i, text in enumerate(cells)])
    if solved:  # a line under the title says which notebook this fills in
        first = n.cells[0]
        title, _, rest = first.source.partition("\n")
        first.source = f"{title}\n\n**Solutions**: `../{name}` with its exercises filled in. Try them there first.\n{rest}"
    n.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    n.metadata["language_info"] = {"name": "python"}
    return n


def write_all(folder):
    """Every notebook into ``folder``; those with exercises also, solved, into ``folder``/solutions."""
    folder = Path(folder)
    (folder / "solutions").mkdir(parents=True, exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        nbformat.write(notebook(name, cells), str(folder / name))
        if has_exercises(cells):
            nbformat.write(notebook(name, cells, solved=True), str(folder / "solutions" / name))


CONV = [
"""md:# Backprop through one convolution, by hand

A convolution is three steps: **im2col** copies every receptive field into a column, **one matrix product**
multiplies the filters with all columns at once, and the way back uses the same pieces: the gradient of the
filters is another product, and the gradient of the input is **col2im**, the adjoint of im2col (it adds each
column back where it came from). This notebook does each step with NumPy, draws im2col and col2im on a small
image, and checks everything against tinynet's `Conv2D` and against finite differences. At the end you write
max-pooling's backward pass yourself.""",
"""%matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from tinynet import kernels
from tinynet.gradcheck import numerical_derivative, relative_error
from tinynet.layers import Conv2D, MaxPool2D

rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 6, 6))         # N, C, H, W
W = rng.standard_normal((4, 3, 3, 3))         # F, C, KH, KW
b = rng.standard_normal(4)
print(f"x {x.shape}: 2 images of 3 channels, 6x6 pixels; W {W.shape}: 4 filters of 3 channels, 3x3")""",
"""md:## 1. im2col: one column per output pixel

With a 3x3 kernel, stride 1 and no padding, each 6x6 image gives 4x4 output pixels; each column holds the
3 x 3 x 3 = 27 values its output pixel sees. Row k = (channel, p, q) of the window; column r = (image, i, j).""",
"""cols = kernels.im2col(x, 3, 3, (1, 1), (0, 0, 0, 0))
# column r = 0 is image 0, output pixel (0, 0): its receptive field, flattened channel by channel
assert np.array_equal(cols[:, 0], x[0, :, 0:3, 0:3].reshape(-1))
print(f"cols {cols.shape}: 27 values in each column, one column for each of the 2 x 4 x 4 = 32 output pixels")""",
"""md:### A picture of im2col and col2im

The same on one 4x4 image with one channel, its pixels numbered 0 to 15: a 3x3 kernel gives 2x2 output pixels, so
im2col makes 4 columns of 9 values. Left, the window of output pixel (0, 1); middle, the same 9 values as column 1;
right, col2im of a matrix of ones: col2im adds every column back where it came from, so it counts the windows each
pixel is in (1 in a corner, 4 in the middle). That is why the way back adds: a pixel in 4 windows gets gradient from
all 4 output pixels.""",
"""small = np.arange(16.0).reshape(1, 1, 4, 4)                       # one image, one channel: pixels 0..15
small_cols = kernels.im2col(small, 3, 3, (1, 1), (0, 0, 0, 0))      # (9, 4): one column per output pixel
counts = kernels.col2im(np.ones_like(small_cols), small.shape, 3, 3, (1, 1), (0, 0, 0, 0))
assert np.array_equal(small_cols[:, 1], small[0, 0, 0:3, 1:4].reshape(-1))   # output pixel (0, 1) is column 1

fig, axes = plt.subplots(1, 3, figsize=(11, 4.5))
panels = [(small[0, 0], "the image: the window of\\noutput pixel (0, 1)", (0.5, -0.5, 3, 3)),
          (small_cols, "im2col: the same window\\nis column 1", (0.5, -0.5, 1, 9)),
          (counts[0, 0], "col2im(ones): how many windows\\neach pixel is in", None)]
for ax, (values, title, box) in zip(axes, panels, strict=True):
    ax.imshow(values, cmap="Blues", vmin=0, vmax=2 * values.max())
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:g}", ha="center", va="center")
    if box:
        ax.add_patch(Rectangle(box[:2], box[2], box[3], fill=False, edgecolor="red", linewidth=3))
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
axes[1].set_xticks(range(4), ["(0, 0)", "(0, 1)", "(1, 0)", "(1, 1)"], fontsize=8)
axes[1].set_xlabel("output pixel")
plt.show()""",
"""md:## 2. Forward: one matrix product

`W.reshape(F, -1) @ cols` gives every output pixel of every filter at once; a reshape and a transpose put it
back in (N, F, OH, OW).""",
"""out = W.reshape(4, -1) @ cols + b[:, None]    # (F, N*OH*OW)
y = out.reshape(4, 2, 4, 4).transpose(1, 0, 2, 3)
conv = Conv2D(4, 3)
conv.build((3, 6, 6), np.float64)
conv.params["W"].data, conv.params["b"].data = W.copy(), b.copy()
assert np.allclose(y, conv.forward(x, training=True))
print(f"y {y.shape}: the same numbers as tinynet's Conv2D")""",
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
left, right = np.sum(cols * c), np.sum(x * kernels.col2im(c, x.shape, 3, 3, (1, 1), (0, 0, 0, 0)))
print(f"adjoint: <im2col(x), c> = {left:.12f} and <x, col2im(c)> = {right:.12f}")
conv.backward(g)
assert np.allclose(dW, conv.params["W"].grad) and np.allclose(db, conv.params["b"].grad)
print("dW and db: the same numbers as tinynet's Conv2D")""",
"""md:## 4. Finite differences agree

For a few entries, nudge the input and the weights by ±h and ±2h, and compare the slope of
L = sum(g * y) with the analytic gradient. The relative error |a - n| / (|a| + |n|) should be ~1e-10.""",
"""def loss():
    return float((conv.forward(x, training=True) * g).sum())

for name, array, analytic in (("x", x, dx), ("W", conv.params["W"].data, dW)):
    idx = [tuple(i) for i in rng.integers(0, array.shape, (4, array.ndim))]
    numeric = np.array([numerical_derivative(loss, array, i, 1e-4) for i in idx])
    err = relative_error([analytic[i] for i in idx], numeric)
    print(f"d loss / d {name}: relative error {err:.1e}")
    assert err < 1e-8""",
"""md:## 5. Your turn: max-pool backward

Max-pooling keeps the largest value of each 2x2 window; with stride 2 the windows do not overlap. The function
below does it with one reshape (axes 3 and 5 of `windows` run inside a window), and agrees with tinynet's
`MaxPool2D`.""",
"""def maxpool_forward(x, k=2):
    \"\"\"(N, C, H, W) -> (N, C, H // k, W // k): the largest value of each k x k window, windows side by side.\"\"\"
    n, c, h, w = x.shape
    windows = x.reshape(n, c, h // k, k, w // k, k)   # windows[n, c, i, p, j, q] = x[n, c, k*i + p, k*j + q]
    return windows.max(axis=(3, 5))


x_pool = rng.standard_normal((2, 3, 6, 6))
pool = MaxPool2D(2)
assert np.array_equal(maxpool_forward(x_pool), pool.forward(x_pool, training=True))
print(f"max-pool: x {x_pool.shape} -> y {maxpool_forward(x_pool).shape}, the same numbers as tinynet's MaxPool2D")""",
"""md:### Exercise: `maxpool_backward`

Write `maxpool_backward(dy, x)`: given x and dy = dL/dy, return dL/dx, an array of x's shape. Each output is the
largest element of its window: nudge that element and the output moves by as much; nudge any other element of the
window and the output does not move at all.

<details><summary>Hint 1</summary>

dL/dx is dy at the element of each window that won, and 0 at the other three. (Random inputs have no ties; on a
tie tinynet gives the gradient to the first element of the window.)
</details>

<details><summary>Hint 2</summary>

Reshape x into `windows` as the forward pass does: `windows == windows.max(axis=(3, 5), keepdims=True)` is True at
each winner. `dy[:, :, :, None, :, None]` lines dy up with `windows`; reshape the product back to x's shape.
</details>""",
"""def maxpool_backward(dy, x, k=2):
    \"\"\"dL/dx (N, C, H, W) for y = maxpool_forward(x, k), given dy = dL/dy (N, C, H // k, W // k).\"\"\"
    ### BEGIN SOLUTION
    n, c, h, w = x.shape
    windows = x.reshape(n, c, h // k, k, w // k, k)
    won = windows == windows.max(axis=(3, 5), keepdims=True)     # True at each window's largest element
    return (won * dy[:, :, :, None, :, None]).reshape(x.shape)
    ### END SOLUTION""",
"""md:The check compares your dL/dx with tinynet's `MaxPool2D.backward`, and with finite differences at every entry
of x; it prints `right` when both agree.""",
"""check:g_pool = rng.standard_normal((2, 3, 3, 3))
dx_pool = maxpool_backward(g_pool, x_pool)
assert dx_pool.shape == x_pool.shape, f"not right yet: dL/dx must have the shape of x, {x_pool.shape}"
dx_tinynet = pool.backward(g_pool)
print(f"largest difference from tinynet's MaxPool2D: {np.abs(dx_pool - dx_tinynet).max():.1e}")


def pool_loss():
    return float((maxpool_forward(x_pool) * g_pool).sum())


numeric = np.array([numerical_derivative(pool_loss, x_pool, i, 1e-4) for i in np.ndindex(x_pool.shape)])
err = relative_error(dx_pool.reshape(-1), numeric)
print(f"relative error against finite differences at all {numeric.size} entries: {err:.1e}")
assert np.allclose(dx_pool, dx_tinynet) and err < 1e-8, "not right yet: see the differences above"
print("max-pool backward: right")""",
]

TRAIN = [
"""md:# Train the course CNN, evaluate it, read the report

A short run on part of Fashion-MNIST (a few thousand images, two epochs: a minute on two CPU cores), then
the report the command line prints, and the plots. `tinynet train` does all of this for the full data set.""",
"""%matplotlib inline
import numpy as np

import tinynet
from tinynet import models, plots
from tinynet.data import FASHION_MNIST, load_fashion_mnist, to_float
from tinynet.layers.softmax import softmax
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import Adam
from tinynet.report import build_report, format_text
from tinynet.train import fit

tinynet.use_backend("numba" if tinynet.optional.available("numba") else "numpy")
(x, y), (x_test, y_test) = load_fashion_mnist()
x, y = to_float(x[:6000]), y[:6000]""",
"""md:The course CNN: `summary()` prints each layer, the shape of what it outputs, and how many parameters it learns.""",
"""model = models.build("cnn_dropout02", seed=0)
model.summary()
print(f"backend {tinynet.get_backend().name}; {len(x):,} training images of {x.shape[1:]}")""",
"""md:Two epochs on 5,000 of the images, validated on the other 1,000 (`validation_split=1 / 6`); `verbose="epoch"`
prints one line per epoch.""",
"""history = fit(model, SoftmaxCrossEntropy(), Adam(model.parameters(), lr=2e-3), x, y, epochs=2, batch_size=32,
              validation_split=1 / 6, verbose="epoch")""",
"""md:## The report

Accuracy alone hides which classes are confused: the confusion matrix (rows: true class, columns: predicted)
shows Shirt, T-shirt/top, Pullover and Coat eat into each other, as in every Fashion-MNIST model.""",
"""report = build_report(model, SoftmaxCrossEntropy(), to_float(x_test[:2000]), y_test[:2000],
                      class_names=FASHION_MNIST.class_names)
print(format_text(report))
assert report["test"]["accuracy"] > 0.7""",
"""md:## Plots

`tinynet train` writes these plots as PNG files into its output folder. Each `*_figure` function of `tinynet.plots`
draws one and returns it, and a figure on a cell's last line shows below the cell. First, accuracy and loss per
epoch, on the training and on the validation images. A training figure is the mean over its epoch, while the weights
still moved and dropout was on; validation is measured at the epoch's end, so early on it can be the higher one.""",
"""plots.history_figure(history.as_dict())""",
"""md:The confusion matrix of the report as a picture: each row is a true class, and an off-diagonal cell's colour is
the share of that row predicted as its column's class.""",
"""plots.confusion_figure(report["test"]["confusion_matrix"], FASHION_MNIST.class_names)""",
"""md:What the model says about the first test image: the probability of every class.""",
"""probs = softmax(model.predict(to_float(x_test[:1])).astype(np.float64))[0]
plots.prediction_figure(x_test[0], probs, FASHION_MNIST.class_names, true_label=y_test[0])""",
]

BENCH = [
"""md:# CPU, GPU and PyTorch: how the benchmark is built, and how to read it

`python -m bench.train_epoch` trains the same model from the same weights on the same batch order on each
backend and on PyTorch, one epoch each, each in a fresh process (so that one run's memory and threads do not
colour the next), after a warm-up that compiles the kernels. It reports images per second, seconds per
epoch, the ratio to PyTorch's time, and the share of this machine's measured float32 matrix-product peak.
Here it runs on a few hundred images; the real runs and their files are in `bench/RESULTS.md`.

`bench/` is a folder of the repository, not a package that installs: the first cell lets Python find it when
Jupyter runs this notebook in its own folder, `notebooks/`.""",
"""import importlib.util
import sys
from pathlib import Path

# Jupyter starts a notebook in its own folder (notebooks/), where `import bench` finds nothing: bench/ sits in the
# repository's root, the folder above, and is not installed with tinynet. So add that root to the path, only when
# bench cannot be found already (run from the root, it can).
if importlib.util.find_spec("bench") is None:
    sys.path.insert(0, str(Path.cwd().parent))""",
"""md:What one training image costs, and what this machine's matrix product can do at best:""",
"""import tinynet
from bench.common import flops_per_image, gemm_peak_gflops
from tinynet import models

flops = flops_per_image(models.build("cnn_dropout02"))
print(f"one training image (forward and backward): {flops['train'] / 1e6:.1f} million floating-point operations")
print(f"this machine's float32 matrix product: {gemm_peak_gflops(512, 3):.0f} GFLOP/s at best (512 x 512)")""",
"""md:## One backend on the CPU

`run_tinynet` is what each benchmark process runs. The numbers from 320 images are noisy: they show the
shape of the output, not a result to quote.""",
"""from bench.train_epoch import run_tinynet

backend = "numba" if tinynet.optional.available("numba") else "numpy"
r = run_tinynet(backend, batch=32, n_images=320, seed=0, warmup=2, n_eval=200)
print(f"{backend}: one epoch of 320 images in {r['train_s']:.2f} s, {320 / r['train_s']:,.0f} images per second")
print(f"evaluation: {r['eval_s']:.1f} s per 10,000 images; after the epoch: loss {r['loss']:.3f}, "
      f"accuracy {r['accuracy']:.1%}")""",
"""md:## The GPU

On a machine with an NVIDIA GPU and CuPy the same call runs on the device (`cupy`: each step replayed as a
CUDA graph; `cupy-eager`: every kernel launched from Python). Elsewhere this cell says so and stops.
`python -m bench.launches` counts the kernels a step launches, with or without a GPU.""",
"""from bench.launches import count

launches = count("cnn_dropout02", 32)
print(f"a training step (batch 32) launches {launches['eager']} kernels one by one, or {launches['graph']} when it is "
      "replayed as a CUDA graph")
if "cupy" in tinynet.available_backends():
    r = run_tinynet("cupy", batch=128, n_images=1280, seed=0, warmup=3, n_eval=200)
    print(f"cupy: one epoch of 1,280 images in {r['train_s']:.3f} s, {1280 / r['train_s']:,.0f} images per second")
else:
    print("no GPU here: the GPU half of the benchmark runs with `make gpu-check` on a machine that has one")""",
]

OWN_LAYER = [
"""md:# Your own layer: write it, check it, train with it, save it

tinynet has no LeakyReLU. Here you write one (a dozen lines), check its gradients the way tinynet checks its
own layers, train a small model with it, and save and load that model. Then you write a Tanh layer yourself.
`docs/your_own_layer.md` is the same walk-through as a page to read.""",
"""import tempfile
from pathlib import Path

import numpy as np

import tinynet
from tinynet.arrays import xp_of
from tinynet.layers import Layer


class LeakyReLU(Layer):
    \"\"\"x (N, ...) -> y (N, ...), elementwise: y = x if x > 0 else alpha * x.  dx = dy * slope.\"\"\"

    def __init__(self, alpha=0.1):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, training=False):
        self._check_input(x)                      # backend, dtype, shape; builds the layer on first use
        xp = xp_of(x)                             # NumPy or CuPy: the same code on every backend
        self.slope = xp.where(x > 0, x.dtype.type(1), x.dtype.type(self.alpha))
        return x * self.slope

    def backward(self, dy):
        return dy * self.slope                    # a new array: dy itself stays as the next layer left it

    def get_config(self):
        return {"alpha": self.alpha}              # what a checkpoint stores to rebuild the layer""",
"""md:## Check it

`tinynet.gradcheck` compares backprop with finite differences in float64 (its random numbers come from its own
stream, so an input you drew with seed 0 is never its upstream gradient). `tinynet.testing.check_layer` adds
everything else tinynet's own layers must pass, on every installed backend.""",
"""from tinynet.testing import check_layer

x = np.random.default_rng(0).standard_normal((4, 6)) + 0.05   # away from the kink at 0
print(tinynet.gradcheck(LeakyReLU(0.2), x).verdict())
result = check_layer(lambda: LeakyReLU(0.2), (4, 6), x=x)
print(result)
assert result.ok""",
"""md:## Train with it

Three classes a small model can tell apart: a bright row, a bright column, or neither (pixels in [0, 1], as
tinynet's models expect).""",
"""from tinynet import Sequential
from tinynet.layers import Dense, Flatten
from tinynet.losses import SoftmaxCrossEntropy
from tinynet.optim import Adam
from tinynet.train import fit

rng = np.random.default_rng(0)
images, labels = rng.random((256, 1, 8, 8), dtype=np.float32) / 2, rng.integers(0, 3, 256)
images[labels == 0, 0, 2] += 0.5     # row 2 bright
images[labels == 1, 0, :, 5] += 0.5  # column 5 bright
model = Sequential([Flatten(), Dense(32), LeakyReLU(0.2), Dense(3)], input_shape=(1, 8, 8), seed=0)
history = fit(model, SoftmaxCrossEntropy(), Adam(model.parameters(), lr=0.01), images, labels, epochs=5,
              batch_size=32, verbose=False)
print(history)""",
"""md:## Save and load it

A checkpoint names each layer's class; `load_model` rebuilds only classes it knows, so register yours (in the
program that saves and in the one that loads).""",
"""from tinynet.layers import register

register(LeakyReLU)
path = model.save(Path(tempfile.mkdtemp()) / "leaky.safetensors")
loaded = tinynet.load_model(path)
assert np.array_equal(loaded.predict(images), model.predict(images))
print(f"loaded {loaded.layers}: the same predictions as the model saved")""",
"""md:## Exercise: Tanh

Write the two methods of `Tanh`: forward computes y = tanh(x) and keeps what backward needs; backward returns
dx = dy * (1 - y^2).

<details><summary>Hint 1</summary>

Copy the shape of `LeakyReLU` above: `xp_of(x)` is NumPy or CuPy, and `xp_of(x).tanh(x)` works on every backend.
</details>

<details><summary>Hint 2</summary>

Keep y, not x: the derivative of tanh is 1 - tanh(x)^2, so `dy * (1 - self.y * self.y)` needs no tanh on the way
back. Return a new array; never change dy in place.
</details>""",
"""class Tanh(Layer):
    \"\"\"x (N, ...) -> y (N, ...), elementwise: y = tanh(x).  dx = dy * (1 - y^2).\"\"\"

    def forward(self, x, training=False):
        self._check_input(x)
        ### BEGIN SOLUTION
        self.y = xp_of(x).tanh(x)
        return self.y
        ### END SOLUTION

    def backward(self, dy):
        ### BEGIN SOLUTION
        return dy * (1 - self.y * self.y)
        ### END SOLUTION""",
"""md:The check: `check_layer` runs every test above on your Tanh, and the last line says PASS or FAIL. Once it passes,
break backward on purpose (`dy * (1 - self.y)`) and read what the check says.""",
"""check:result = check_layer(Tanh, (3, 5))
print(result)
assert result.ok, "not right yet: see the checks marked FAIL above\"""",
]

LOSS_AND_BATCHNORM = [
"""md:# Softmax cross-entropy and BatchNorm, backward by hand

Two backward passes every classifier here needs: the gradient of the loss with respect to the logits, where
backprop starts, and BatchNorm's, the hardest of tinynet's layers. Each section gives the forward pass; you write
the backward pass, and the check cells after it compare your numbers with tinynet's own code and with finite
differences.""",
"""import numpy as np

import tinynet
from tinynet.gradcheck import numerical_derivative, relative_error
from tinynet.layers import BatchNorm
from tinynet.losses import SoftmaxCrossEntropy

rng = np.random.default_rng(0)


def numeric_gradient(f, x):
    \"\"\"d f() / dx at every entry of x, by finite differences (f must read x).\"\"\"
    return np.array([numerical_derivative(f, x, i, 1e-4) for i in np.ndindex(x.shape)]).reshape(x.shape)""",
"""md:## 1. Softmax cross-entropy

For logits z (N images, K classes) and the true classes y, softmax turns each row into probabilities
p = exp(z) / sum(exp(z)), and the loss is the mean over the rows of -log p[y]. tinynet's `SoftmaxCrossEntropy`
gives the same number.""",
"""def softmax_cross_entropy(logits, labels):
    \"\"\"The mean over the N rows of -log softmax(logits)[n, labels[n]].\"\"\"
    z = logits - logits.max(axis=1, keepdims=True)             # the row's max subtracted: exp cannot overflow
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))   # log softmax, row by row
    return -log_p[np.arange(len(labels)), labels].mean()


logits = rng.standard_normal((5, 4))          # 5 images, 4 classes
labels = np.array([0, 3, 1, 1, 2])
print(f"loss {softmax_cross_entropy(logits, labels):.6f}; "
      f"tinynet's SoftmaxCrossEntropy: {float(SoftmaxCrossEntropy()(logits, labels)):.6f}")""",
"""md:### Exercise: dL/dlogits

Write `softmax_cross_entropy_backward(logits, labels)`: it returns dL/dlogits, an (N, K) array.

<details><summary>Hint 1: one row</summary>

For one row, L = -z[y] + log(sum_k exp(z[k])). Its derivative with respect to z[j] is -[j == y] + p[j]:
the probabilities, less 1 at the true class.
</details>

<details><summary>Hint 2: the batch</summary>

L is the mean of N rows, so each row's gradient is divided by N: dL/dlogits = (softmax - onehot) / N.
`np.eye(K)[labels]` is the one-hot matrix. Subtract the row's max before `exp`, as the forward pass does.
</details>""",
"""def softmax_cross_entropy_backward(logits, labels):
    \"\"\"dL/dlogits (N, K) for L = softmax_cross_entropy(logits, labels).\"\"\"
    ### BEGIN SOLUTION
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)                      # softmax, row by row
    onehot = np.eye(logits.shape[1])[labels]
    return (p - onehot) / len(logits)
    ### END SOLUTION""",
"""md:The check compares your gradient with the one tinynet's `SoftmaxCrossEntropy` computes, and with finite
differences of the loss above. (Each row of the right answer sums to 0: pushing the true class's logit up pushes
the others' probabilities down.)""",
"""check:dlogits = softmax_cross_entropy_backward(logits, labels)
assert np.shape(dlogits) == logits.shape, f"not right yet: dL/dlogits must have the shape of the logits, {logits.shape}"
loss = SoftmaxCrossEntropy()
loss.forward(logits, labels)
err = relative_error(dlogits, numeric_gradient(lambda: softmax_cross_entropy(logits, labels), logits))
print(f"largest difference from tinynet's SoftmaxCrossEntropy: {np.abs(dlogits - loss.backward()).max():.1e}")
print(f"relative error against finite differences: {err:.1e}")
assert np.allclose(dlogits, loss.backward()) and err < 1e-8, "not right yet: see the differences above"
print("softmax cross-entropy backward: right")""",
"""md:## 2. BatchNorm, in training mode

BatchNorm normalises each feature with the batch's mean and variance, then scales and shifts it:
xhat = (x - mean) / sqrt(var + eps), y = gamma * xhat + beta. Here x is (N, F), one mean per feature; on images
(N, C, H, W) it is the same per channel, over N x H x W values. The forward pass keeps xhat, gamma and
1 / sqrt(var + eps) for the way back.""",
"""def batchnorm_forward(x, gamma, beta, eps=1e-3):
    \"\"\"x (N, F) -> y (N, F), and the cache backward needs.\"\"\"
    mean = x.mean(axis=0)
    var = x.var(axis=0)                          # divides by N, as training does
    inv_std = 1 / np.sqrt(var + eps)
    xhat = (x - mean) * inv_std
    return gamma * xhat + beta, (xhat, gamma, inv_std)


x_bn = rng.standard_normal((8, 3)) * 2 + 1      # 8 samples of 3 features
gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
y_bn, cache = batchnorm_forward(x_bn, gamma, beta)
xhat = cache[0]
print(f"after normalising, each feature's mean is within {np.abs(xhat.mean(axis=0)).max():.0e} of 0;")
print(f"the standard deviations are {xhat.std(axis=0).round(4)}: 1, less a little for eps")""",
"""md:### Exercise: `batchnorm_backward`

Write `batchnorm_backward(dy, cache)`: it returns dx (N, F), dgamma (F,) and dbeta (F,). dgamma and dbeta are
one line each. dx is the hard part: every x changes the batch's mean and variance, so it reaches every y of its
feature, not only its own.

<details><summary>Hint 1: gamma and beta</summary>

y = gamma * xhat + beta for each of the N rows, so dbeta = sum over the rows of dy, and dgamma = sum of dy * xhat.
</details>

<details><summary>Hint 2: dx, step by step</summary>

Go back through the forward pass one line at a time, with x - mean = xhat / inv_std:
dxhat = dy * gamma; dvar = sum(dxhat * (x - mean)) * (-1/2) * inv_std**3; dmean = -sum(dxhat) * inv_std (the
mean also reaches var, but that path adds dvar * mean(-2 * (x - mean)) = 0); then
dx = dxhat * inv_std + dvar * 2 * (x - mean) / N + dmean / N. Each sum is over the N rows, one per feature.
</details>

<details><summary>Hint 3: dx in one line</summary>

Put hint 2 together: dx = gamma * inv_std / N * (N * dy - dbeta - xhat * dgamma). Deriving this on paper is
CS231n's exercise; `kernels/numpy_ref.py: batchnorm_backward` is tinynet's.
</details>""",
"""def batchnorm_backward(dy, cache):
    \"\"\"dx (N, F), dgamma (F,), dbeta (F,) for y = batchnorm_forward(x, gamma, beta), given dy = dL/dy (N, F).\"\"\"
    xhat, gamma, inv_std = cache
    ### BEGIN SOLUTION
    n = len(dy)
    dbeta = dy.sum(axis=0)
    dgamma = (dy * xhat).sum(axis=0)
    dx = gamma * inv_std / n * (n * dy - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta
    ### END SOLUTION""",
"""md:The first check compares your three gradients with tinynet's `BatchNorm` layer, given the same gamma and beta.""",
"""check:g_bn = rng.standard_normal(y_bn.shape)
dx_bn, dgamma, dbeta = batchnorm_backward(g_bn, cache)

bn = BatchNorm(eps=1e-3)
bn.build((3,), np.float64)
bn.params["gamma"].data[:], bn.params["beta"].data[:] = gamma, beta
y_tinynet = bn.forward(x_bn, training=True)
assert np.allclose(y_tinynet, y_bn)
tinynets = {"dx": bn.backward(g_bn), "dgamma": bn.params["gamma"].grad, "dbeta": bn.params["beta"].grad}
for name, yours in (("dx", dx_bn), ("dgamma", dgamma), ("dbeta", dbeta)):
    assert np.shape(yours) == tinynets[name].shape, f"not right yet: {name} must be {tinynets[name].shape}"
    print(f"{name}: largest difference from tinynet's BatchNorm {np.abs(yours - tinynets[name]).max():.1e}")
    assert np.allclose(yours, tinynets[name]), f"not right yet: {name} differs from tinynet's"
print("batchnorm backward: right")""",
"""md:The second check is tinynet's own gradient checker on a layer that is tinynet's `BatchNorm` with your backward:
`tinynet.gradcheck` compares its gradients with finite differences of the forward pass, a tensor a row.""",
"""check:class YourBatchNorm(BatchNorm):
    \"\"\"tinynet's BatchNorm forward, your backward.\"\"\"

    def backward(self, dy):
        cache = (self.xhat, self.params["gamma"].data, self.inv_std)
        dx, self.params["gamma"].grad, self.params["beta"].grad = batchnorm_backward(dy, cache)
        return dx


layer = YourBatchNorm(eps=1e-3)
layer.build((3,), np.float64)
layer.params["gamma"].data[:], layer.params["beta"].data[:] = gamma, beta
report = tinynet.gradcheck(layer, x_bn)
print(report.table())
print(report.verdict())
assert report.ok, "not right yet: the rows marked FAIL differ from finite differences\"""",
]

NOTEBOOKS = {
    "1_conv_backprop_by_hand.ipynb": CONV,
    "2_train_and_read_the_report.ipynb": TRAIN,
    "3_cpu_gpu_and_pytorch.ipynb": BENCH,
    "4_your_own_layer.ipynb": OWN_LAYER,
    "5_softmax_and_batchnorm_by_hand.ipynb": LOSS_AND_BATCHNORM,
}

if __name__ == "__main__":
    write_all(sys.argv[1] if len(sys.argv) > 1 else HERE)
