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
captured again at the start of every epoch.

Memory allocated while capturing comes from a private pool that nothing else uses,
so no later allocation can land on a buffer the graph writes to.
"""

from __future__ import annotations

import numpy as np


class CapturedStep:
    """``step(xd, yd, idx)`` trains on rows ``idx`` of the device arrays ``xd``, ``yd``.

    ``train_step(xb, yb)`` is the step to capture; it must not read anything back
    to the host. Batches of ``batch_size`` rows replay the graph; a shorter last
    batch runs the step directly. ``launches`` counts graph replays.
    """

    def __init__(self, train_step, xp, batch_size, x_shape, dtype, augment=None):
        self.train_step, self.xp, self.batch_size, self.augment = train_step, xp, batch_size, augment
        self.stream = xp.cuda.Stream(non_blocking=True)
        self.pool = xp.cuda.MemoryPool()
        self.x = xp.empty((batch_size, *x_shape), dtype=dtype)
        self.y = xp.empty((batch_size,), dtype=np.int64)
        self.graph = self.value = None
        self.warm = False
        self.replays = 0

    def __enter__(self):
        # A non-blocking stream does not wait for the default stream: first let it wait for everything queued there
        # so far (the data set's copy to the device, the parameters, the optimizer state, a loaded checkpoint).
        self.stream.wait_event(self.xp.cuda.get_current_stream().record())
        self.stream.__enter__()  # every launch of the run, eager or replayed, goes to one stream in order
        return self

    def __exit__(self, *exc):
        self.stream.synchronize()
        return self.stream.__exit__(*exc)

    def new_epoch(self):
        """Capture again before the next replay (the learning rate may have changed)."""
        self.graph = None

    def __call__(self, xd, yd, idx):
        if len(idx) != self.batch_size:
            xb = xd[idx] if self.augment is None else self.augment(xd[idx])
            return self.train_step(xb, yd[idx])
        self.xp.take(xd, idx, axis=0, out=self.x)
        self.xp.take(yd, idx, axis=0, out=self.y)
        if self.augment is not None:  # drawn on the host: outside the graph, into the graph's input buffer
            self.x[...] = self.augment(self.x)
        if not self.warm:  # the first step compiles the kernels and creates cuBLAS's handle: not capturable
            self.warm = True
            return self.train_step(self.x, self.y)
        if self.graph is None:
            self._capture()  # records the step without running it; the launch below runs it
        self.graph.launch(stream=self.stream)
        self.replays += 1
        return self.value

    def _capture(self):
        with self.xp.cuda.using_allocator(self.pool.malloc):
            self.stream.begin_capture()
            try:
                self.value = self.train_step(self.x, self.y)
            except BaseException:
                try:  # end the capture, but let the step's own error be the one the user sees
                    self.stream.end_capture()
                except Exception:  # a capture that failed cannot end cleanly either
                    pass
                raise
            self.graph = self.stream.end_capture()
