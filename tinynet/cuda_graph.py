"""Replay a training step as one CUDA graph, when the GPU would otherwise wait for Python.

A step of a small CNN launches a few dozen kernels that each run for microseconds, so
on a GPU the time goes into launching them from Python. CuPy can capture a stream's
launches into a graph and replay them all with one call (``Stream.begin_capture``).

A replay runs exactly the captured launches, on the same memory, with the same
scalar arguments. So everything that changes from step to step must live in device
memory and be updated by the step itself: the batch (copied into fixed buffers
before each replay), Adam's step count and lr_t, the dropout call counters,
BatchNorm's running statistics (all updated in place), and the loss totals. Host
values fixed at capture time (the learning rate, set per epoch) are why the step is
captured again at the start of every epoch; a parameter, optimizer or layer buffer
replaced by a new array (a checkpoint loaded by a callback, say) is why it is
captured again after callbacks that did so, before a replay would update the old one.

What a capture may not do, CuPy and CUDA refuse: cuBLAS calls (CuPy's guard in
cupy_backends/cuda/libs/cublas.pyx), host transfers and synchronisation. So the whole
run multiplies with tinynet's own GEMM kernel (kernels/cupy_gpu.cu), the eager first
step and the last short batch too, and all of them compute the same sums. A capture
that fails anyway falls back to plain steps, with one warning saying why.

Memory allocated while capturing comes from a private pool that nothing else uses,
so no later allocation can land on a buffer the graph writes to.
"""

from __future__ import annotations

import warnings

import numpy as np

from . import kernels

_largest_pool = 0  # bytes: the largest private pool a captured run of this process has held


def largest_graph_pool_bytes() -> int:
    """Device memory held by the largest graph pool of this process's captured runs (what CuPy's default pool's
    total_bytes does not count; the benchmark adds the two)."""
    return _largest_pool


class GraphCaptureWarning(RuntimeWarning):
    """The training step could not be captured as a CUDA graph; training goes on with plain steps."""


class CapturedStep:
    """``step(xd, yd, idx)`` trains on rows ``idx`` of the device arrays ``xd``, ``yd``.

    ``train_step(xb, yb)`` is the step to capture; it must not read anything back
    to the host. ``buffers()`` lists the arrays the step reads or updates in place
    and that outlive it (parameters, optimizer and layer state): after callbacks ran
    (:meth:`callbacks_ran`), the graph is replayed only if they are still the very
    arrays it captured. Batches of ``batch_size`` rows
    replay the graph; a shorter last batch runs the step directly. ``replays`` counts
    graph replays; ``failure`` says why capturing failed, if it did.
    """

    def __init__(self, train_step, backend, batch_size, x_shape, dtype, augment=None, buffers=None):
        self.train_step, self.backend, self.batch_size, self.augment = train_step, backend, batch_size, augment
        self.buffers = buffers
        xp = self.xp = backend.xp
        self.stream = xp.cuda.Stream(non_blocking=True)
        self.pool = xp.cuda.MemoryPool()
        self.x = xp.empty((batch_size, *x_shape), dtype=dtype)
        self.y = xp.empty((batch_size,), dtype=np.int64)
        self.graph = self.value = self.failure = None
        self.captured_buffers = ()
        self.warm = False
        self.replays = 0
        self._own_gemm = kernels.implementation(backend).own_gemm()

    def __enter__(self):
        # A non-blocking stream does not wait for the default stream: first let it wait for everything queued there
        # so far (the data set's copy to the device, the parameters, the optimizer state, a loaded checkpoint).
        self.stream.wait_event(self.xp.cuda.get_current_stream().record())
        self.stream.__enter__()  # every launch of the run, eager or replayed, goes to one stream in order
        self._own_gemm.__enter__()  # every step of the run, eager or replayed, multiplies the same way
        return self

    def __exit__(self, *exc):
        global _largest_pool
        try:
            self._own_gemm.__exit__(*exc)
            self.stream.synchronize()
            _largest_pool = max(_largest_pool, self.pool.total_bytes())  # a pool keeps what it got until freed
        finally:  # whatever failed, the current stream is the caller's again
            self.stream.__exit__(*exc)

    def new_epoch(self):
        """Capture again before the next replay (the learning rate may have changed)."""
        self.graph = None

    def __call__(self, xd, yd, idx):
        if len(idx) != self.batch_size or self.failure is not None:
            xb = xd[idx] if self.augment is None else self.augment(xd[idx])
            return self.train_step(xb, yd[idx])
        self.xp.take(xd, idx, axis=0, out=self.x)
        self.xp.take(yd, idx, axis=0, out=self.y)
        if self.augment is not None:  # drawn on the host: outside the graph, into the graph's input buffer
            self.x[...] = self.augment(self.x)
        if not self.warm:  # the first step compiles the kernels (nvrtc, a module load): not capturable
            self.warm = True
            return self.train_step(self.x, self.y)
        if self.graph is None and not self._capture():
            return self.train_step(self.x, self.y)  # capturing failed: this step, and the rest, run plainly
        self.graph.launch(stream=self.stream)
        self.replays += 1
        return self.value

    def callbacks_ran(self):
        """Capture again before the next replay if a callback replaced an array the graph updates in place: a replay
        would update the old one, which nothing reads any more. Only callbacks can (fit runs them every sync_every
        steps), so this is checked after them, not before every replay: listing deep_bn_cnn's ~140 arrays costs
        ~75 us, host time the graph exists to save."""
        if self.graph is None or self.buffers is None:
            return
        now = self.buffers()
        same = len(now) == len(self.captured_buffers) and all(
            a is b for a, b in zip(now, self.captured_buffers, strict=True))
        if not same:
            self.graph = None

    def _capture(self):
        """Record the step without running it (the launch that follows runs it); False if it could not be."""
        with self.xp.cuda.using_allocator(self.pool.malloc):
            self.stream.begin_capture()
            try:
                self.value = self.train_step(self.x, self.y)
            except Exception as exc:  # Ctrl-C and the like end the capture below and go on up
                self._end_failed_capture()
                return self._fall_back(exc)
            except BaseException:
                self._end_failed_capture()
                raise
            try:  # CUDA may refuse only here: an invalidated capture, or a graph it cannot instantiate
                self.graph = self.stream.end_capture()
            except Exception as exc:
                return self._fall_back(exc)
        self.captured_buffers = () if self.buffers is None else tuple(self.buffers())
        return True

    def _fall_back(self, exc):
        self.failure = f"{type(exc).__name__}: {exc}"
        warnings.warn(f"the training step could not be captured as a CUDA graph ({self.failure}); training goes on "
                      "with plain steps, slower but the same numbers", GraphCaptureWarning,
                      stacklevel=7)  # _fall_back < _capture < __call__ < train_epoch < _epoch < fit < the user's call
        return False

    def _end_failed_capture(self):
        """End a capture that went wrong. CUDA ran none of it, so the plain step that follows starts clean."""
        try:
            self.stream.end_capture()
        except Exception:  # an invalidated capture ends with an error of its own: the step's error is the one to tell
            pass
