"""Every kernel entry point, on every backend, computes what the NumPy reference computes -- NaN, inf and
ties included -- and refuses bad arguments before any compiled code touches memory.

On "cupy-standin" these run the CUDA source that ships (tinynet/kernels/cupy_gpu.cu), compiled for the
host (tests/cuda_host.py), launched by tinynet/kernels/cupy_gpu.py as on a GPU.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import host
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tinynet import kernels
from tinynet.kernels import naive, numpy_ref

# NaN and inf are the point here; NumPy's "invalid value" warnings about them are expected
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0]


def with_specials(a, rng, fraction):
    """Sprinkle NaN, +-inf and signed zeros over a copy of ``a``."""
    a = a.copy()
    flat = a.reshape(-1)
    hit = rng.random(flat.size) < fraction
    flat[hit] = rng.choice(SPECIALS, hit.sum())
    return a


def same(got, ref, dtype, exact=False, sums=False):
    """``sums``: ref holds sums of many products, whose rounding error scales with the largest of them, not with
    each result (one near zero after cancellation is off by the same few units as its neighbours)."""
    got = host(got)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    assert np.array_equal(np.isnan(got), np.isnan(ref)), "NaN in different places"
    if exact:
        np.testing.assert_array_equal(got, ref)
    else:
        rtol, atol = (1e-5, 1e-6) if np.dtype(dtype) == np.float32 else (1e-12, 1e-14)
        finite = np.abs(ref[np.isfinite(ref)])
        if sums and finite.size:
            atol = max(atol, rtol * float(finite.max()))
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol)


def image(rng, shape, dtype, specials, ties):
    x = rng.integers(-3, 4, shape).astype(dtype) if ties else rng.standard_normal(shape).astype(dtype)
    return with_specials(x, rng, 0.1) if specials else x


window = dict(
    n=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 8), w=st.integers(1, 8), kh=st.integers(1, 3),
    kw=st.integers(1, 3), sh=st.integers(1, 3), sw=st.integers(1, 3), pads=st.tuples(*[st.integers(0, 2)] * 4),
    seed=st.integers(0, 2**16), specials=st.booleans(), ties=st.booleans(),
)


def _fits(h, w, kh, kw, sh, sw, pads):
    return h + pads[0] + pads[1] >= kh and w + pads[2] + pads[3] >= kw


@SETTINGS
@given(**window)
def test_im2col_and_col2im(backend, dtype, n, c, h, w, kh, kw, sh, sw, pads, seed, specials, ties):
    assume(_fits(h, w, kh, kw, sh, sw, pads))
    rng = np.random.default_rng(seed)
    x = image(rng, (n, c, h, w), dtype, specials, ties)
    cols = numpy_ref.im2col(x, kh, kw, (sh, sw), pads)
    same(kernels.im2col(backend.asarray(x), kh, kw, (sh, sw), pads), cols, dtype, exact=True)
    g = image(rng, cols.shape, dtype, specials, ties)
    same(kernels.col2im(backend.asarray(g), x.shape, kh, kw, (sh, sw), pads),
         numpy_ref.col2im(g, x.shape, kh, kw, (sh, sw), pads), dtype)


@SETTINGS
@given(n=st.integers(1, 3), c=st.integers(1, 6), f=st.integers(1, 9), h=st.integers(1, 9), w=st.integers(1, 9),
       pads=st.tuples(*[st.integers(0, 2)] * 4), seed=st.integers(0, 2**16), specials=st.sampled_from(
           ["none", "x", "W", "dy"]), input_grad=st.booleans())
def test_direct_3x3_convolution(backend, dtype, n, c, f, h, w, pads, seed, specials, input_grad):
    """Numba's compiled 3x3 kernels (every padding up to 2) against the reference, NaN and inf in each input."""
    assume(_fits(h, w, 3, 3, 1, 1, pads))
    _direct_matches_the_reference(backend, dtype, (n, c, h, w), (f, c, 3, 3), pads, seed, specials, input_grad)


@pytest.mark.parametrize(("x_shape", "w_shape", "pads"), [
    ((2, 3, 28, 28), (4, 3, 3, 3), (1, 1, 1, 1)),  # a Conv2D "same" layer of the course's models
    ((2, 6, 28, 28), (9, 6, 3, 3), (1, 1, 1, 1)),  # blocks of 4 output channels: two full, one of 1 (dx: 4 + 2)
    ((3, 1, 28, 28), (5, 1, 3, 3), (0, 0, 0, 0)),  # "valid", one input channel
    ((2, 3, 9, 8), (2, 3, 3, 3), (2, 0, 0, 2)),  # asymmetric pads: dx pads dy by 2 - p on each side
    ((2, 3, 9, 8), (2, 3, 3, 3), (0, 2, 1, 0)),
    ((2, 2, 1, 7), (3, 2, 3, 3), (1, 1, 0, 2)),  # a one-row image
    ((2, 2, 6, 7), (3, 2, 1, 3), (0, 1, 2, 0)),  # not 3x3: Numba hands it to the reference
    ((2, 2, 6, 7), (3, 2, 3, 3), (3, 3, 0, 1)),  # padding 3: compiled forward, the reference's backward
])
@pytest.mark.parametrize("specials", ["none", "x", "W", "dy"])
def test_direct_convolution_at_fixed_shapes(backend, dtype, x_shape, w_shape, pads, specials):
    _direct_matches_the_reference(backend, dtype, x_shape, w_shape, pads, 7, specials, True)


def _direct_matches_the_reference(backend, dtype, x_shape, w_shape, pads, seed, specials, input_grad):
    rng = np.random.default_rng(seed)
    x, W = image(rng, x_shape, dtype, specials == "x", False), image(rng, w_shape, dtype, specials == "W", False)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    y = numpy_ref.conv_direct_forward(x, W, b, pads)
    dy = image(rng, y.shape, dtype, specials == "dy", False)
    dx, dW, db = numpy_ref.conv_direct_backward(dy, x, W, pads, input_grad)
    xb, Wb = backend.asarray(x), backend.asarray(W)
    same(kernels.conv_direct_forward(xb, Wb, backend.asarray(b), pads), y, dtype, sums=True)
    got = kernels.conv_direct_backward(backend.asarray(dy), xb, Wb, pads, input_grad)
    assert (got[0] is None) == (not input_grad)
    for g, r in zip(got, (dx, dW, db), strict=True):
        if r is not None:
            same(g, r, dtype, sums=True)


def test_direct_3x3_kernels_stay_inside_their_arrays(tmp_path):
    """The compiled kernels read up to 2 elements past each padded plane (the slack _flat_padded adds): run them with
    Numba's bounds checking on, in a fresh process and cache, over paddings 0-2, small planes and partial blocks of
    output channels."""
    pytest.importorskip("numba")
    code = """
import itertools, numpy as np, tinynet
from tinynet import kernels
from tinynet.kernels import numpy_ref
tinynet.use_backend("numba")
rng = np.random.default_rng(0)
# channels (C, F): blocks of 4 output channels, full and partial, for y and dW, and for dx (where C plays F)
for (c, f), pads in itertools.product([(2, 3), (5, 5), (1, 9)], itertools.product(range(3), repeat=4)):
    for h, w in [(1, 1), (1, 4), (3, 1), (2, 5), (6, 6)]:
        x = rng.standard_normal((2, c, h, w)).astype(np.float32)
        W, b = rng.standard_normal((f, c, 3, 3)).astype(np.float32), np.zeros(f, np.float32)
        if h + pads[0] + pads[1] < 3 or w + pads[2] + pads[3] < 3:
            continue
        y = kernels.conv_direct_forward(x, W, b, pads)
        dx, dW, db = kernels.conv_direct_backward(np.ones_like(y), x, W, pads)
        np.testing.assert_allclose(y, numpy_ref.conv_direct_forward(x, W, b, pads), rtol=1e-4, atol=1e-4)
print("ok")
"""
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 1, 1, 1), (2, 1, 0, 2)])
def test_direct_convolution_reference_is_the_im2col_convolution(pads):
    """The reference's sums by window position are the sums of im2col + GEMM (and of the plain loops)."""
    rng = np.random.default_rng(3)
    x, W, b = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    y = numpy_ref.conv_direct_forward(x, W, b, pads)
    np.testing.assert_allclose(y, naive.conv2d_naive(x, W, b, (1, 1), pads), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx, dW, db = numpy_ref.conv_direct_backward(dy, x, W, pads)
    cols, dy2 = numpy_ref.im2col(x, 3, 2, (1, 1), pads), numpy_ref.nchw_to_gemm(dy)
    np.testing.assert_allclose(dW, (dy2 @ cols.T).reshape(W.shape), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, dy2.sum(axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, numpy_ref.col2im(W.reshape(4, -1).T @ dy2, x.shape, 3, 2, (1, 1), pads),
                               rtol=1e-12, atol=1e-12)


@SETTINGS
@given(**window)
def test_maxpool_forward_and_backward(backend, dtype, n, c, h, w, kh, kw, sh, sw, pads, seed, specials, ties):
    pads = tuple(min(p, k - 1) for p, k in zip(pads, (kh, kh, kw, kw), strict=True))  # every window holds a pixel
    assume(_fits(h, w, kh, kw, sh, sw, pads))
    rng = np.random.default_rng(seed)
    x = image(rng, (n, c, h, w), dtype, specials, ties)
    y, am = numpy_ref.maxpool_forward(x, kh, kw, (sh, sw), pads)
    y_b, am_b = kernels.maxpool_forward(backend.asarray(x), kh, kw, (sh, sw), pads)
    same(y_b, y, dtype, exact=True)
    np.testing.assert_array_equal(host(am_b), am)  # ties: the first position; NaN: the first NaN
    dy = image(rng, y.shape, dtype, specials, False)
    same(kernels.maxpool_backward(backend.asarray(dy), am_b, x.shape, kh, kw, (sh, sw), pads),
         numpy_ref.maxpool_backward(dy, am, x.shape, kh, kw, (sh, sw), pads), dtype)


def test_maxpool_nan_rules_by_hand(backend):
    """np.argmax's rules in every window position: the first NaN wins; otherwise the first maximum."""
    x = np.array([[[[1, np.nan, np.inf, np.nan, 2, 2],  # three 2x2 windows side by side
                    [np.nan, 5, 3, 4, -np.inf, 4]]]], np.float32)
    for pads in [(0, 0, 0, 0), (1, 0, 1, 0)]:  # the generic kernels too (padding leaves the 2x2 fast path)
        y, am = kernels.maxpool_forward(backend.asarray(x), 2, 2, (2, 2), pads)
        ref_y, ref_am = numpy_ref.maxpool_forward(x, 2, 2, (2, 2), pads)
        np.testing.assert_array_equal(host(y), ref_y)
        np.testing.assert_array_equal(host(am), ref_am)
    y, am = kernels.maxpool_forward(backend.asarray(x), 2, 2, (2, 2), (0, 0, 0, 0))
    np.testing.assert_array_equal(host(y)[0, 0, 0], [np.nan, np.nan, 4])
    np.testing.assert_array_equal(host(am)[0, 0, 0], [1, 1, 3])


@SETTINGS
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_relu_forward_and_backward(backend, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    x = with_specials(rng.standard_normal(shape).astype(dtype), rng, 0.2)
    dy = with_specials(rng.standard_normal(shape).astype(dtype), rng, 0.2)
    y = numpy_ref.relu_forward(x)
    y_b = kernels.relu_forward(backend.asarray(x))
    same(y_b, y, dtype, exact=True)
    same(kernels.relu_backward(backend.asarray(dy), y_b), numpy_ref.relu_backward(dy, y), dtype, exact=True)


@SETTINGS
@given(shape=st.lists(st.integers(1, 40), min_size=1, max_size=3), seed=st.integers(0, 2**64 - 1),
       calls=st.integers(0, 2**64 - 1), rate=st.floats(0, 0.99))
def test_dropout_draws_the_same_mask_on_every_backend(backend, dtype, shape, seed, calls, rate):
    rng = np.random.default_rng(seed % 2**32)
    x = with_specials(rng.standard_normal(shape).astype(dtype), rng, 0.1)
    counter = np.array([calls], dtype=np.uint64)
    ref = numpy_ref.dropout(x, seed, counter, rate)
    same(kernels.dropout(backend.asarray(x), seed, backend.asarray(counter), rate), ref, dtype, exact=True)


def test_dropout_keeps_the_right_fraction_and_scales(backend):
    x = np.ones(200_000, np.float32)
    y = host(kernels.dropout(backend.asarray(x), 7, backend.asarray(np.array([3], np.uint64)), 0.3))
    assert set(np.unique(y)) == {0, np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.005
    again = host(kernels.dropout(backend.asarray(x), 7, backend.asarray(np.array([4], np.uint64)), 0.3))
    assert 0.15 < ((y == 0) & (again == 0)).mean() / 0.3 < 0.45  # the next call draws an independent mask


@SETTINGS
@given(n=st.integers(1, 9), k=st.integers(1, 12), seed=st.integers(0, 2**16), specials=st.booleans(),
       bad_label=st.booleans())
def test_softmax_cross_entropy(backend, dtype, n, k, seed, specials, bad_label):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((n, k)) * 5).astype(dtype)
    if specials:
        logits = with_specials(logits, rng, 0.1)
    labels = rng.integers(0, k, n)
    if bad_label:
        labels[0] = k  # the kernel must give NaN for that row, never read past the row
    totals = np.array([1.5, 2.0])
    loss, d = numpy_ref.softmax_cross_entropy(logits, labels, totals)
    totals_b = backend.asarray(np.array([1.5, 2.0]))
    loss_b, d_b = kernels.softmax_cross_entropy(backend.asarray(logits), backend.asarray(labels), totals_b)
    same(loss_b, loss, dtype)
    same(d_b, d, dtype)
    same(totals_b, totals, dtype)  # float64 sums of the logits-dtype losses


@SETTINGS
@given(n=st.integers(1, 3), f=st.integers(1, 4), oh=st.integers(1, 5), ow=st.integers(1, 5), seed=st.integers(0, 99))
def test_gemm_layout_kernels(backend, dtype, n, f, oh, ow, seed):
    rng = np.random.default_rng(seed)
    out = with_specials(rng.standard_normal((f, n * oh * ow)).astype(dtype), rng, 0.1)
    bias = rng.standard_normal(f).astype(dtype)
    y = numpy_ref.gemm_to_nchw(out, bias, n, oh, ow)
    same(kernels.gemm_to_nchw(backend.asarray(out), backend.asarray(bias), n, oh, ow), y, dtype, exact=True)
    same(kernels.nchw_to_gemm(backend.asarray(y)), numpy_ref.nchw_to_gemm(y), dtype, exact=True)


def _operand(rng, rows, cols, layout, dtype, b):
    """A (rows, cols) operand on backend ``b``, laid out as C-contiguous, a transposed view, or every other column
    of a wider array (a strided view)."""
    if layout == "transposed":
        return b.asarray(rng.standard_normal((cols, rows)).astype(dtype)).T
    if layout == "strided":
        return b.asarray(rng.standard_normal((rows, 2 * cols)).astype(dtype))[:, ::2]
    return b.asarray(rng.standard_normal((rows, cols)).astype(dtype))


def _own_gemm(b):
    """Inside this block the CuPy backend multiplies with its CUDA kernel (as a graph-replayed training run does)."""
    return kernels.implementation(b).own_gemm() if b.name == "cupy" else __import__("contextlib").nullcontext()


LAYOUTS = st.sampled_from(["contiguous", "transposed", "strided"])


@SETTINGS
@given(m=st.integers(1, 13), k=st.integers(1, 300), n=st.integers(1, 13), layout_a=LAYOUTS, layout_b=LAYOUTS,
       seed=st.integers(0, 2**16))
def test_matmul_on_any_layout(backend, dtype, m, k, n, layout_a, layout_b, seed):
    """kernels.matmul as the layers call it (views included); on CuPy both the cuBLAS path and the gemm kernel,
    whose split-K sums (k >= 128 with these few outputs) are checked here too."""
    rng = np.random.default_rng(seed)
    a, b = _operand(rng, m, k, layout_a, dtype, backend), _operand(rng, k, n, layout_b, dtype, backend)
    ref = host(a).astype(np.float64) @ host(b).astype(np.float64)
    for block in (__import__("contextlib").nullcontext(), _own_gemm(backend)):
        with block:
            got = kernels.matmul(a, b)
        same(got, ref.astype(dtype), dtype, sums=True)


@pytest.mark.parametrize(("m", "k", "n"), [(32, 2000, 9), (5, 1, 7), (1, 257, 1), (9, 130, 4)])
def test_gemm_kernel_splits_long_sums_and_spreads_nan_and_inf(backend, dtype, m, k, n):
    """The CUDA gemm kernel makes every product (0 * inf is NaN, as in the sum's definition) and splits a long K
    across threads without changing which entries are NaN or inf."""
    if backend.name != "cupy":
        pytest.skip("the gemm kernel is the CuPy backend's")
    rng = np.random.default_rng(m * k * n)
    a = with_specials(rng.standard_normal((m, k)).astype(dtype), rng, 0.002)
    b = with_specials(rng.standard_normal((k, n)).astype(dtype), rng, 0.002)
    every_product = (a[:, :, None].astype(np.float64) * b[None, :, :]).sum(axis=1)  # no BLAS shortcut past a zero
    if (m, k, n) == (32, 2000, 9):
        assert kernels.implementation(backend).gemm_splits(m, n, k) > 1  # the weight-gradient shape: few outputs, a long K
    gemm = kernels.implementation(backend).gemm
    same(gemm(backend.asarray(a), backend.asarray(b)), every_product.astype(dtype), dtype, sums=True)
    # views with an offset and strides in both operands: the kernel reads them where CuPy's pointer starts
    wide_a, wide_b = np.zeros((m + 1, 2 * k + 1), dtype), np.zeros((k + 2, 3 * n), dtype)
    wide_a[1:, 1::2], wide_b[2:, ::3] = a, b
    same(gemm(backend.asarray(wide_a)[1:, 1::2], backend.asarray(wide_b)[2:, ::3]), every_product.astype(dtype), dtype,
         sums=True)


@pytest.mark.parametrize("size", [7, 40_000])
def test_adam_with_nan_and_inf_gradients(backend, dtype, size):
    rng = np.random.default_rng(size)
    p, m = (rng.standard_normal(size).astype(dtype) for _ in range(2))
    v = np.abs(rng.standard_normal(size)).astype(dtype)
    g = with_specials(rng.standard_normal(size).astype(dtype), rng, 0.1)
    ref = [a.copy() for a in (p, g, m, v)]
    t, lr = np.array([3.0]), np.array([1e-3])
    numpy_ref.adam_update(*ref, t, lr, 0.9, 0.999, 1e-7)
    got = [backend.asarray(a) for a in (p, g, m, v)]
    kernels.adam_update(*got, backend.asarray(t), backend.asarray(lr), 0.9, 0.999, 1e-7)
    for a, r in zip(got, ref, strict=True):
        same(a, r, dtype)


# -- bad arguments: one clear error, the same on every backend, before any kernel runs ------------------------------
def _batchnorm_both_ways(backend, x, dy, gamma, beta):
    """batchnorm_forward then batchnorm_backward on ``backend``, all results on the host."""
    b = backend.asarray
    y, xhat, mean, var, inv_std = kernels.batchnorm_forward(b(x), b(gamma), b(beta), 1e-3)
    dx, dgamma, dbeta = kernels.batchnorm_backward(b(dy), xhat, b(gamma), inv_std)
    return [host(a) for a in (y, xhat, mean, var, inv_std, dx, dgamma, dbeta)]


# (N, F) features, small images (below Numba's threshold, where it runs the reference) and large ones (its kernel)
BATCHNORM_SHAPES = [(5, 3), (64, 300), (2, 3, 4, 5), (8, 4, 28, 28), (3, 70, 9, 9)]


@pytest.mark.parametrize("shape", BATCHNORM_SHAPES)
def test_batchnorm_kernels_match_the_reference_in_float64(backend, dtype, shape):
    """Each backend, in ``dtype``, against the reference run in float64 on the same (rounded) numbers: the
    backends sum in different orders, so float32 agrees to its rounding, float64 to about 1e-12."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    gamma, beta = rng.standard_normal((2, shape[1])).astype(dtype)
    got = _batchnorm_both_ways(backend, x, dy, gamma, beta)
    y, xhat, mean, var, inv_std = numpy_ref.batchnorm_forward(*(a.astype(np.float64) for a in (x, gamma, beta)), 1e-3)
    ref = [y, xhat, mean, var, inv_std, *numpy_ref.batchnorm_backward(dy.astype(np.float64), xhat,
                                                                       gamma.astype(np.float64), inv_std)]
    m = x.size // shape[1]
    names = ("y", "xhat", "mean", "var", "inv_std", "dx", "dgamma", "dbeta")
    for name, g, r in zip(names, got, ref, strict=True):
        assert g.dtype == dtype and g.shape == r.shape, name
        # dgamma and dbeta are sums of m terms: their rounding error grows with sqrt(m)
        scale = np.sqrt(m) if name in ("dgamma", "dbeta") else 1
        rtol, atol = (2e-5, 2e-5 * scale) if np.dtype(dtype) == np.float32 else (1e-11, 1e-11 * scale)
        np.testing.assert_allclose(g, r, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("shape", [(4, 3, 64, 64), (2, 3, 5, 5)])
@pytest.mark.parametrize("special", [np.nan, np.inf])
def test_batchnorm_kernels_spread_nan_and_inf_over_their_channel_only(backend, dtype, shape, special):
    """One NaN or inf in channel 1 makes that channel's statistics and outputs NaN, as in the reference;
    the other channels are untouched. (inf - mean(inf) is NaN.)"""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    x[1, 1, 2, 3] = special
    dy = rng.standard_normal(shape).astype(dtype)
    gamma, beta = np.ones(shape[1], dtype), np.zeros(shape[1], dtype)
    got = _batchnorm_both_ways(backend, x, dy, gamma, beta)
    y, xhat, mean, var, inv_std = numpy_ref.batchnorm_forward(x, gamma, beta, 1e-3)
    ref = [y, xhat, mean, var, inv_std, *numpy_ref.batchnorm_backward(dy, xhat, gamma, inv_std)]
    for g, r in zip(got, ref, strict=True):
        assert np.array_equal(np.isnan(g), np.isnan(r))
    y, dx = got[0], got[5]
    assert np.isnan(y[:, 1]).all() and np.isnan(dx[:, 1]).all()
    assert np.isfinite(y[:, [0, 2]]).all() and np.isfinite(dx[:, [0, 2]]).all()


def _x(b, shape=(2, 3, 6, 6), dtype=np.float32):
    return b.asarray(np.ones(shape, dtype))


def _t_lr(b):
    return b.asarray(np.array([1.0])), b.asarray(np.array([1e-3]))


BAD = {
    "adam: transposed gradient": (lambda b: kernels.adam_update(_x(b, (3, 4)), _x(b, (4, 3)), _x(b, (3, 4)),
                                  _x(b, (3, 4)), *_t_lr(b), 0.9, 0.999, 1e-7),
                                  ValueError, r"gradient has shape \(4, 3\) but the parameter has \(3, 4\)"),
    "adam: smaller gradient": (lambda b: kernels.adam_update(_x(b, (40_000,)), _x(b, (10,)), _x(b, (40_000,)),
                               _x(b, (40_000,)), *_t_lr(b), 0.9, 0.999, 1e-7),
                               ValueError, r"gradient has shape \(10,\) but the parameter has \(40000,\)"),
    "adam: float64 moment": (lambda b: kernels.adam_update(_x(b, (3,)), _x(b, (3,)), _x(b, (3,), np.float64),
                             _x(b, (3,)), *_t_lr(b), 0.9, 0.999, 1e-7),
                             TypeError, "first moment is float64 but the parameter is float32"),
    "adam: lr a float": (lambda b: kernels.adam_update(_x(b, (3,)), _x(b, (3,)), _x(b, (3,)), _x(b, (3,)),
                         _t_lr(b)[0], 1e-3, 0.9, 0.999, 1e-7), TypeError, "learning rate is a float"),
    "pool backward: wrong dy": (lambda b: kernels.maxpool_backward(_x(b, (2, 3, 2, 2)), b.asarray(
                                np.zeros((2, 3, 2, 2), np.int8)), (2, 3, 6, 6), 2, 2, (2, 2), (0, 0, 0, 0)),
                                ValueError, r"must both be \(2, 3, 3, 3\)"),
    "pool backward: int32 argmax": (lambda b: kernels.maxpool_backward(_x(b, (2, 3, 3, 3)), b.asarray(
                                    np.zeros((2, 3, 3, 3), np.int32)), (2, 3, 6, 6), 2, 2, (2, 2), (0, 0, 0, 0)),
                                    TypeError, "argmax must be int8, got int32"),
    "col2im: wrong columns": (lambda b: kernels.col2im(_x(b, (27, 10)), (2, 3, 6, 6), 3, 3, (1, 1), (0,) * 4),
                              ValueError, r"must have shape \(27, 32\)"),
    "im2col: 3-D input": (lambda b: kernels.im2col(_x(b, (3, 6, 6)), 3, 3, (1, 1), (0,) * 4),
                          ValueError, "must be 4-D"),
    "im2col: window too big": (lambda b: kernels.im2col(_x(b), 7, 7, (1, 1), (0,) * 4), ValueError, "does not fit"),
    "im2col: int input": (lambda b: kernels.im2col(_x(b, dtype=np.int32), 3, 3, (1, 1), (0,) * 4),
                          TypeError, "must be float32 or float64, got int32"),
    "relu backward: shapes": (lambda b: kernels.relu_backward(_x(b, (2, 3)), _x(b, (3, 2))), ValueError,
                              "must match"),
    "dropout: int32 counter": (lambda b: kernels.dropout(_x(b), 1, b.asarray(np.zeros(1, np.int32)), 0.5),
                               TypeError, "uint64 array of shape"),
    "dropout: rate 1": (lambda b: kernels.dropout(_x(b), 1, b.asarray(np.zeros(1, np.uint64)), 1.0), ValueError,
                        r"rate must be in \[0, 1\)"),
    "loss: int32 labels": (lambda b: kernels.softmax_cross_entropy(_x(b, (4, 3)), b.asarray(np.zeros(4, np.int32))),
                           TypeError, "labels must be int64"),
    "loss: short labels": (lambda b: kernels.softmax_cross_entropy(_x(b, (4, 3)), b.asarray(np.zeros(3, np.int64))),
                           TypeError, r"int64 of shape \(4,\)"),
    "batchnorm: 3-D input": (lambda b: kernels.batchnorm_forward(_x(b, (2, 3, 4)), _x(b, (3,)), _x(b, (3,)), 1e-3),
                             ValueError, r"must be \(N, C, H, W\) or \(N, C\)"),
    "batchnorm: short gamma": (lambda b: kernels.batchnorm_forward(_x(b), _x(b, (2,)), _x(b, (3,)), 1e-3),
                               ValueError, r"gamma must be float32 of shape \(3,\)"),
    "batchnorm: float64 beta": (lambda b: kernels.batchnorm_forward(_x(b), _x(b, (3,)), _x(b, (3,), np.float64),
                                1e-3), ValueError, r"beta must be float32 of shape \(3,\) .* got float64"),
    "batchnorm: eps 0": (lambda b: kernels.batchnorm_forward(_x(b), _x(b, (3,)), _x(b, (3,)), 0.0), ValueError,
                         "eps must be a finite number > 0"),
    "batchnorm: xhat shape": (lambda b: kernels.batchnorm_backward(_x(b), _x(b, (2, 3, 6, 5)), _x(b, (3,)),
                              _x(b, (3,))), ValueError, r"xhat has shape \(2, 3, 6, 5\)"),
    "batchnorm: empty batch": (lambda b: kernels.batchnorm_backward(_x(b, (0, 3)), _x(b, (0, 3)), _x(b, (3,)),
                               _x(b, (3,))), ValueError, "N, C > 0"),
    "direct conv: channels": (lambda b: kernels.conv_direct_forward(_x(b), _x(b, (4, 2, 3, 3)), _x(b, (4,)),
                              (1,) * 4), ValueError, r"expect 2 input channels, got 3"),
    "direct conv: float64 weights": (lambda b: kernels.conv_direct_forward(_x(b), _x(b, (4, 3, 3, 3), np.float64),
                                     _x(b, (4,)), (1,) * 4), TypeError, "weights are float64 but the input is float32"),
    "direct conv: short bias": (lambda b: kernels.conv_direct_forward(_x(b), _x(b, (4, 3, 3, 3)), _x(b, (3,)),
                                (1,) * 4), ValueError, r"bias must have shape \(4,\), got \(3,\)"),
    "direct conv: float64 bias": (lambda b: kernels.conv_direct_forward(_x(b), _x(b, (4, 3, 3, 3)),
                                  _x(b, (4,), np.float64), (1,) * 4), TypeError, "bias is float64 but the input is"),
    "direct conv: one pad": (lambda b: kernels.conv_direct_forward(_x(b), _x(b, (4, 3, 3, 3)), _x(b, (4,)), 1),
                             ValueError, r"pads \(top, bottom, left, right\), got \(1, 1\) and 1"),
    "direct conv: input_grad a string": (lambda b: kernels.conv_direct_backward(_x(b, (2, 4, 6, 6)), _x(b),
                                         _x(b, (4, 3, 3, 3)), (1,) * 4, "no"), TypeError, "input_grad must be True"),
    "direct conv pays: 3-D shape": (lambda b: kernels.conv_direct_pays((3, 6, 6), (4, 3, 3, 3), (1, 1), (1,) * 4),
                                    ValueError, r"x_shape must be \(N, C, H, W\)"),
    "direct conv: negative pad": (lambda b: kernels.conv_direct_forward(_x(b), _x(b, (4, 3, 3, 3)), _x(b, (4,)),
                                  (1, 1, -1, 1)), ValueError, "padding must be an integer >= 0"),
    "direct conv: window too big": (lambda b: kernels.conv_direct_forward(_x(b), _x(b, (4, 3, 9, 3)), _x(b, (4,)),
                                    (0,) * 4), ValueError, "does not fit"),
    "direct conv: dy shape": (lambda b: kernels.conv_direct_backward(_x(b, (2, 4, 6, 5)), _x(b), _x(b, (4, 3, 3, 3)),
                              (1,) * 4), ValueError, r"gradient must have shape \(2, 4, 6, 6\)"),
    "direct conv: 3-D dy": (lambda b: kernels.conv_direct_backward(_x(b, (2, 4, 36)), _x(b), _x(b, (4, 3, 3, 3)),
                            (1,) * 4), ValueError, "must be 4-D"),
    "matmul: inner sizes": (lambda b: kernels.matmul(_x(b, (3, 4)), _x(b, (5, 2))), ValueError,
                            r"cannot multiply \(3, 4\) by \(5, 2\): the inner sizes 4 and 5 differ"),
    "matmul: dtypes": (lambda b: kernels.matmul(_x(b, (3, 4)), _x(b, (4, 2), np.float64)), TypeError,
                       "the right matrix is float64 but the left is float32"),
    "matmul: 1-D": (lambda b: kernels.matmul(_x(b, (4,)), _x(b, (4, 2))), ValueError, "left matrix must be 2-D"),
    "not this backend's array": (lambda b: kernels.relu_forward(np.ones(3, np.float32) if b.name == "cupy"
                                 else [1.0]), TypeError, "ReLU input is a"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_arguments_are_refused_before_any_kernel_runs(backend, case):
    make, error, message = BAD[case]
    with pytest.raises(error, match=message):
        make(backend)
