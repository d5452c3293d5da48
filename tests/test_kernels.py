"""Fast Conv2D / MaxPool2D equal their plain-loop references; col2im is im2col's adjoint."""

import numpy as np
import pytest
from conftest import host, tol
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tinynet import kernels
from tinynet.kernels import numpy_ref
from tinynet.kernels.naive import conv2d_naive, maxpool2d_naive
from tinynet.layers import Conv2D, MaxPool2D

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
geometry = dict(
    n=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
    kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 3), sw=st.integers(1, 3),
    pad=st.one_of(st.sampled_from(["valid", "same"]), st.integers(0, 2)), seed=st.integers(0, 2**16),
)


def fits(layer, shape):
    try:
        layer.output_shape(shape)
        return True
    except ValueError:
        return False


@SETTINGS
@given(f=st.integers(1, 4), **geometry)
def test_conv2d_matches_naive(backend, dtype, f, n, c, h, w, kh, kw, sh, sw, pad, seed):
    layer = Conv2D(f, (kh, kw), stride=(sh, sw), padding=pad, seed=seed)
    assume(fits(layer, (c, h, w)))  # no output pixel: the layer rejects it (tested in test_hostile_files_and_inputs)
    x = np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(dtype)
    y = host(layer.forward(backend.asarray(x)))
    assert y.dtype == dtype
    W, b = host(layer.params["W"].data), host(layer.params["b"].data)
    np.testing.assert_allclose(y, conv2d_naive(x, W, b, (sh, sw), layer.pads), **tol(dtype))


@SETTINGS
@given(**geometry)
def test_maxpool2d_matches_naive(backend, dtype, n, c, h, w, kh, kw, sh, sw, pad, seed):
    if isinstance(pad, int):
        pad = "same" if pad else "valid"
    layer = MaxPool2D((kh, kw), stride=(sh, sw), padding=pad)
    assume(fits(layer, (c, h, w)))  # no output pixel: the layer rejects it (tested in test_hostile_files_and_inputs)
    x = np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(dtype)
    y = host(layer.forward(backend.asarray(x)))
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, maxpool2d_naive(x, (kh, kw), (sh, sw), layer.pads))


@SETTINGS
@given(**geometry)
def test_col2im_is_the_adjoint_of_im2col(backend, n, c, h, w, kh, kw, sh, sw, pad, seed):
    """<im2col(x), c> == <x, col2im(c)> for all x, c: the defining property of an adjoint."""
    layer = Conv2D(1, (kh, kw), stride=(sh, sw), padding=pad)
    assume(fits(layer, (c, h, w)))  # no output pixel: the layer rejects it (tested in test_hostile_files_and_inputs)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    layer.build((c, h, w), np.float64)
    cols = host(kernels.im2col(backend.asarray(x), kh, kw, (sh, sw), layer.pads))
    g = rng.standard_normal(cols.shape)
    back = host(kernels.col2im(backend.asarray(g), x.shape, kh, kw, (sh, sw), layer.pads))
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(cols * g), np.sum(x * back), rtol=1e-10)


def test_im2col_round_trip_counts_window_overlaps(backend):
    """col2im(im2col(x)) = x times the number of windows covering each pixel."""
    x = np.ones((1, 1, 4, 4))
    cols = kernels.im2col(backend.asarray(x), 3, 3, (1, 1), (0, 0, 0, 0))
    counts = host(kernels.col2im(cols, x.shape, 3, 3, (1, 1), (0, 0, 0, 0)))
    expected = np.array([[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]], dtype=float)
    np.testing.assert_array_equal(counts[0, 0], expected)


def test_maxpool_routes_gradient_to_the_first_max_on_ties(backend):
    x = np.array([[[[1.0, 1.0], [0.0, 1.0]]]])
    layer = MaxPool2D(2)
    layer.forward(backend.asarray(x))
    dx = host(layer.backward(backend.asarray(np.ones((1, 1, 1, 1)))))
    np.testing.assert_array_equal(dx[0, 0], [[1, 0], [0, 0]])


@pytest.mark.parametrize("h, w", [(4, 6), (5, 5), (7, 4), (11, 11)])
def test_2x2_pool_fast_path_matches_reference(backend, dtype, h, w):
    """The course's 2x2/stride-2 pool has its own kernels; odd sizes leave a row/column in no window."""
    x = np.random.default_rng(h * w).standard_normal((2, 3, h, w)).astype(dtype)
    x[0, 0, :2, :2] = 1.0  # a tie: the first position must win
    dy = np.random.default_rng(1).standard_normal((2, 3, h // 2, w // 2)).astype(dtype)
    y, am = numpy_ref.maxpool_forward(x, 2, 2, (2, 2), (0, 0, 0, 0))
    dx = numpy_ref.maxpool_backward(dy, am, x.shape, 2, 2, (2, 2), (0, 0, 0, 0))
    y_b, am_b = kernels.maxpool_forward(backend.asarray(x), 2, 2, (2, 2), (0, 0, 0, 0))
    dx_b = kernels.maxpool_backward(backend.asarray(dy), am_b, x.shape, 2, 2, (2, 2), (0, 0, 0, 0))
    np.testing.assert_array_equal(host(y_b), y)
    np.testing.assert_array_equal(host(am_b), am)
    np.testing.assert_array_equal(host(dx_b), dx)


@pytest.mark.parametrize("stride, pads", [((1, 1), (0, 0, 0, 0)), ((1, 1), (1, 1, 1, 1)), ((2, 1), (0, 1, 1, 0))])
def test_im2col_layout_matches_reference(backend, stride, pads):
    """Every backend lays the columns out as the reference does (the adjoint test alone would not notice a permutation)."""
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 5))
    cols = numpy_ref.im2col(x, 3, 2, stride, pads)
    np.testing.assert_array_equal(host(kernels.im2col(backend.asarray(x), 3, 2, stride, pads)), cols)
    np.testing.assert_array_equal(host(kernels.col2im(backend.asarray(cols), x.shape, 3, 2, stride, pads)),
                                  numpy_ref.col2im(cols, x.shape, 3, 2, stride, pads))


def test_im2col_column_is_one_receptive_field():
    """Row k = (channel, p, q), column r = (image, i, j): cols[k, r] = x[image, channel, i + p, j + q]."""
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 5))
    cols = numpy_ref.im2col(x, 3, 2, (1, 1), (0, 0, 0, 0))  # OH, OW = 4, 4
    for b, ch, p, q, i, j in [(0, 0, 0, 0, 0, 0), (1, 2, 2, 1, 3, 3), (1, 0, 1, 0, 2, 1)]:
        assert cols[(ch * 3 + p) * 2 + q, (b * 4 + i) * 4 + j] == x[b, ch, i + p, j + q]


def test_relu_kernels_match_reference(backend, dtype):
    """Zeros, negative zeros and NaN included: NaN must pass through so divergence is still caught."""
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 7)).astype(dtype)
    x[0, 0, 0, :4] = [0.0, -0.0, np.nan, -np.inf]
    dy = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    y = numpy_ref.relu_forward(x)
    y_b = host(kernels.relu_forward(backend.asarray(x)))
    dx_b = host(kernels.relu_backward(backend.asarray(dy), backend.asarray(y)))
    assert y_b.dtype == dx_b.dtype == dtype
    np.testing.assert_array_equal(y_b, y)
    np.testing.assert_array_equal(dx_b, numpy_ref.relu_backward(dy, y))
    assert np.isnan(y_b[0, 0, 0, 2]) and dx_b[0, 0, 0, 2] == 0


@pytest.mark.parametrize("size", [10, 40_000])  # below and above the Numba kernel's small-array cutoff
def test_adam_kernel_matches_reference(backend, dtype, size):
    rng = np.random.default_rng(size)
    p, g, m = (rng.standard_normal((size // 10, 10)).astype(dtype) for _ in range(3))
    v = np.abs(rng.standard_normal(p.shape)).astype(dtype)
    p0 = p.copy()
    ref = [a.copy() for a in (p, g, m, v)]
    t, lr = np.array([2.0]), np.array([3e-3])
    numpy_ref.adam_update(*ref, t, lr, 0.9, 0.999, 1e-7)
    got = [backend.asarray(a) for a in (p, g, m, v)]
    kernels.adam_update(*got, backend.asarray(t), backend.asarray(lr), 0.9, 0.999, 1e-7)
    for name, a, r in zip("pgmv", got, ref, strict=True):
        a = host(a)
        assert a.dtype == dtype, name
        np.testing.assert_allclose(a, r, **tol(dtype), err_msg=name)
    assert not np.array_equal(host(got[0]), p0)  # it did update in place
