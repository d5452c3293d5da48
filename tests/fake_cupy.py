"""A stand-in for CuPy that is as strict as CuPy about host and device, for tests on machines without a GPU.

Install it with the ``fake_cupy`` fixture (conftest.py): ``import cupy`` then gives this module, and the
"cupy" backend runs tinynet's real CUDA kernels (tinynet/kernels/cupy_gpu.cu), compiled for the host by
cuda_host.py. Device memory is played by NumPy arrays hidden inside :class:`ndarray`. What CuPy refuses,
this refuses too, so a host/device mix-up anywhere in tinynet fails a test here:

- ``np.asarray(device_array)`` and any other implicit conversion raise ``TypeError`` (CuPy's message);
- an operation mixing a device array with a NumPy array raises ``TypeError``;
- reductions return 0-d device arrays, never host scalars;
- host <-> device transfers happen only through ``cupy.asarray``, ``cupy.asnumpy``, ``.get()``, ``.item()``,
  ``.tolist()``, ``float()``, ``int()`` and ``bool()`` (each counted in ``stats``).

Stricter than CuPy, on purpose (tinynet should not depend on these implicit transfers): indexing or
assigning with NumPy arrays, and kernel scalars that are not NumPy scalars of the kernel's C type.

CUDA graphs: ``Stream.begin_capture()`` records every launch and array operation instead of only running
it, ``end_capture()`` returns a :class:`Graph` whose ``launch()`` replays them on the same memory with the
same scalars, as a real graph does. During capture, anything that needs the host (a transfer, ``float()``)
raises, as CUDA does. ``stats`` counts kernel launches per kind so tests and the benchmark can count them.

It is a test double, not a feature: only what tinynet uses is here.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import numbers
import sys
import types
from pathlib import Path

import numpy as np

# dtypes are NumPy's, as in CuPy
from numpy import bool_, float32, float64, int8, int32, int64, uint8, uint64  # noqa: F401

__version__ = "14.2.0-standin"
IS_STANDIN = True

#: Largest single allocation allowed, in bytes (None: no limit); beyond it, OutOfMemoryError as CuPy raises.
memory_limit = None

stats = {"launches": 0, "raw_kernels": 0, "array_ops": 0, "gemms": 0, "to_device": 0, "to_host": 0}
launches_by_name: dict[str, int] = {}  # what launched, for reading a step's count

_IMPLICIT = "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy array explicitly."


class StreamCaptureError(RuntimeError):
    """What CUDA says when a captured stream is asked to synchronise with the host."""


class OutOfMemoryError(MemoryError):
    pass


def _host_read(what):
    """Anything that brings data to the host: refused while a graph is being captured."""
    if _capture.active is not None:
        raise StreamCaptureError(f"cudaErrorStreamCaptureUnsupported: {what} during stream capture")
    stats["to_host"] += 1


# -- unwrapping arguments: the strictness lives here ---------------------------------------------------------------------
def _unwrap(a, where):
    if isinstance(a, ndarray):
        return a._device_memory
    if isinstance(a, np.ndarray):
        raise TypeError(f"Unsupported type {type(a)} in {where}: mixing a NumPy (host) array with CuPy (device) arrays")
    if isinstance(a, (tuple, list)):
        return type(a)(_unwrap(v, where) for v in a)
    if a is None or a is Ellipsis or isinstance(a, (numbers.Number, np.generic, slice, str, np.dtype, type)):
        return a
    raise TypeError(f"Unsupported type {type(a)} in {where}")


def _wrap(r):
    if isinstance(r, np.ndarray):
        return ndarray(r)
    if isinstance(r, np.generic):  # CuPy's reductions give 0-d device arrays, never host scalars
        return ndarray(np.asarray(r))
    if isinstance(r, tuple):
        return tuple(_wrap(v) for v in r)
    return r


class _Capture:
    """The graph being captured, if any.

    ``active`` is the list of replayable steps. A real capture only records: nothing runs until the graph
    is launched. The stand-in has to run each operation to know its result's shape, so it snapshots every
    buffer that existed before the capture when an operation first touches it, and puts it back at
    ``end_capture``: memory from before the capture is unchanged by capturing, as on a GPU.
    """

    active: list | None = None
    created: set = set()  # ids of root buffers allocated during the capture
    snapshots: dict = {}  # id of a root buffer from before -> (buffer, its content when first touched)


_capture = _Capture()


def _roots(arrays):
    """The memory buffers behind device arrays (a view's base), while a capture is active."""
    if _capture.active is None:
        return []
    out = []
    for a in arrays:
        if isinstance(a, ndarray):
            root = a._device_memory
            while isinstance(root.base, np.ndarray):
                root = root.base
            out.append(root)
    return out


def _before_touching(arrays):
    for root in _roots(arrays):  # memory from before the capture: keep what it held
        if id(root) not in _capture.created and id(root) not in _capture.snapshots:
            _capture.snapshots[id(root)] = (root, root.copy())


def _after_creating(results):
    for root in _roots(results):  # new memory: the capture's own
        if id(root) not in _capture.snapshots:
            _capture.created.add(id(root))


def _record(replay):
    if _capture.active is not None:
        _capture.active.append(replay)


def _all_arrays(args, kwargs):
    out = []
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, (tuple, list)):
            out += _all_arrays(a, {})
        elif isinstance(a, ndarray):
            out.append(a)
    return out


def _op(func, *args, _name=None, **kwargs):
    """Run one array operation (one kernel launch on a GPU) on unwrapped arguments and wrap the result."""
    name = _name or getattr(func, "__name__", "op")
    hargs, hkwargs = _unwrap(args, name), {k: _unwrap(v, name) for k, v in kwargs.items()}
    _before_touching(_all_arrays(args, kwargs))
    result = func(*hargs, **hkwargs)
    for r in _flat(result):
        if memory_limit is not None and isinstance(r, np.ndarray) and r.base is None and r.nbytes > memory_limit:
            raise OutOfMemoryError(f"Out of memory allocating {r.nbytes:,} bytes (stand-in limit {memory_limit:,})")
    out = _wrap(result)
    _after_creating(_flat(out))
    views = "out" not in kwargs and _is_view(result, hargs, hkwargs)
    if not views and func not in _NO_LAUNCH:
        stats["launches"] += 1
        stats["array_ops"] += 1
        stats["gemms"] += func is np.matmul
        launches_by_name[name] = launches_by_name.get(name, 0) + 1

    def replay():  # the same operation on the same memory: inputs read again, results written where they were
        again = func(*_unwrap(args, name), **{k: _unwrap(v, name) for k, v in kwargs.items()})
        if views:
            return
        for o, r in zip(_flat(out), _flat(again), strict=True):
            if isinstance(o, ndarray):
                o._device_memory[...] = r

    _record(replay)
    return out


_NO_LAUNCH = {np.empty, np.empty_like}  # allocations without a kernel


def _flat(r):
    return r if isinstance(r, tuple) else (r,)


def _is_view(result, hargs, hkwargs):
    """A reshape, slice or transpose launches nothing (nor does ascontiguousarray of a contiguous array):
    its result is an input or shares memory with one."""
    if not isinstance(result, np.ndarray):
        return False
    inputs = [a for a in list(hargs) + list(hkwargs.values()) if isinstance(a, np.ndarray)]
    if builtins.any(result is a for a in inputs):
        return True
    return result.base is not None and builtins.any(np.shares_memory(result, a) for a in inputs)


# -- the array ---------------------------------------------------------------------------------------------------------
class ndarray:
    """A device array. Its memory is a NumPy array that only this module and the kernel harness touch."""

    __slots__ = ("_device_memory",)
    __array_priority__ = 100

    def __init__(self, memory):
        if not isinstance(memory, np.ndarray):
            raise TypeError("fake_cupy.ndarray is created by the module's functions")
        self._device_memory = memory

    # what CuPy refuses
    def __array__(self, *args, **kwargs):
        raise TypeError(_IMPLICIT)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):  # np.exp(device) -> device, as CuPy does
        if method != "__call__":
            return NotImplemented
        return _op(ufunc, *inputs, _name=ufunc.__name__, **kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        mod = sys.modules[__name__]
        if not hasattr(mod, func.__name__):
            raise TypeError(f"the CuPy stand-in has no {func.__name__}")
        return getattr(mod, func.__name__)(*args, **kwargs)

    # attributes
    shape = property(lambda self: self._device_memory.shape)
    dtype = property(lambda self: self._device_memory.dtype)
    ndim = property(lambda self: self._device_memory.ndim)
    size = property(lambda self: self._device_memory.size)
    itemsize = property(lambda self: self._device_memory.itemsize)
    nbytes = property(lambda self: self._device_memory.nbytes)
    strides = property(lambda self: self._device_memory.strides)
    flags = property(lambda self: self._device_memory.flags)
    T = property(lambda self: _op(np.transpose, self))

    def __len__(self):
        return len(self._device_memory)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # transfers (explicit)
    def get(self, stream=None):
        _host_read("ndarray.get()")
        return self._device_memory.copy()

    def item(self):
        _host_read("ndarray.item()")
        return self._device_memory.item()

    def tolist(self):
        _host_read("ndarray.tolist()")
        return self._device_memory.tolist()

    def __float__(self):
        _host_read("float(device array)")
        return float(self._device_memory)

    def __int__(self):
        _host_read("int(device array)")
        return int(self._device_memory)

    def __index__(self):
        raise TypeError("a CuPy array cannot be used as a Python index; call int() first")

    def __bool__(self):
        _host_read("bool(device array)")
        return bool(self._device_memory)

    def __repr__(self):
        _host_read("repr(device array)")
        return "fake_cupy." + repr(self._device_memory)

    def __format__(self, spec):
        _host_read("format(device array)")
        return format(self._device_memory[()] if self.ndim == 0 else self._device_memory, spec)

    def __reduce__(self):
        raise TypeError("the CuPy stand-in refuses pickling (copying a device array means a transfer)")

    def __deepcopy__(self, memo):
        return _op(np.copy, self, _name="deepcopy")

    def __copy__(self):
        return self.copy()

    # indexing
    def __getitem__(self, key):
        _check_index(key)
        if isinstance(key, ndarray) and key.dtype == np.bool_:
            _host_read("boolean-mask indexing (CuPy synchronises to count the selected elements)")
        return _op(lambda a, k: a[k], self, key, _name="getitem")

    def __setitem__(self, key, value):
        _check_index(key)

        def assign(a, k, v):
            a[k] = v

        _op(assign, self, key, value, _name="setitem")

    # methods that launch kernels (or are views)
    def __getattr__(self, name):
        method = getattr(np.ndarray, name, None)
        if method is None or name.startswith("_") or name in _REFUSED_METHODS:
            raise AttributeError(f"the CuPy stand-in's ndarray has no attribute {name!r}")

        @functools.wraps(method)
        def call(*args, **kwargs):
            return _op(method, self, *args, _name=f"ndarray.{name}", **kwargs)

        return call

    def view(self, dtype=None):
        return _op(lambda a: a.view(dtype), self, _name="view")


_REFUSED_METHODS = {"tofile", "dump", "dumps", "tobytes", "tostring", "ctypes", "data"}


def _check_index(key):
    for k in key if isinstance(key, tuple) else (key,):
        if isinstance(k, np.ndarray):
            raise TypeError(f"indexing a device array with a NumPy array ({k.dtype}{list(k.shape)}): transfer it first")
        if isinstance(k, list):
            raise TypeError("indexing a device array with a Python list: make it a device array first")


def _binary(name, ufunc, reflected=False):
    def method(self, other):
        if isinstance(other, np.ndarray):
            raise TypeError(f"Unsupported type {type(other)}: {name} of a CuPy array and a NumPy array")
        if not isinstance(other, (ndarray, numbers.Number, np.generic)):
            return NotImplemented
        return _op(ufunc, other, self, _name=name) if reflected else _op(ufunc, self, other, _name=name)

    return method


def _inplace(name, ufunc):
    def method(self, other):
        if isinstance(other, np.ndarray):
            raise TypeError(f"Unsupported type {type(other)}: {name} of a CuPy array and a NumPy array")
        def in_place(a, b):
            ufunc(a, b, out=a)

        _op(in_place, self, other, _name=name)
        return self

    return method


for _n, _u in {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.true_divide, "floordiv": np.floor_divide,
    "mod": np.remainder, "pow": np.power, "matmul": np.matmul, "and": np.bitwise_and, "or": np.bitwise_or,
    "xor": np.bitwise_xor, "lshift": np.left_shift, "rshift": np.right_shift,
}.items():
    setattr(ndarray, f"__{_n}__", _binary(_n, _u))
    setattr(ndarray, f"__r{_n}__", _binary(_n, _u, reflected=True))
    setattr(ndarray, f"__i{_n}__", _inplace(_n, _u))
for _n, _u in {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal, "eq": np.equal,
               "ne": np.not_equal}.items():
    setattr(ndarray, f"__{_n}__", _binary(_n, _u))
ndarray.__neg__ = lambda self: _op(np.negative, self)
ndarray.__abs__ = lambda self: _op(np.absolute, self)
ndarray.__invert__ = lambda self: _op(np.invert, self)
ndarray.__hash__ = None


# -- module-level functions ------------------------------------------------------------------------------------------
def asarray(a, dtype=None, order=None):
    """The explicit host -> device transfer (or a no-op / cast for device arrays)."""
    if isinstance(a, ndarray):
        return a if dtype is None or np.dtype(dtype) == a.dtype else a.astype(dtype)
    if _capture.active is not None:
        raise StreamCaptureError("cudaErrorStreamCaptureUnsupported: a host-to-device copy during stream capture")
    stats["to_device"] += 1
    return ndarray(np.array(a, dtype=dtype, order=order or "K", copy=True))


array = asarray


def asnumpy(a, stream=None):
    if isinstance(a, ndarray):
        return a.get()
    return np.asarray(a)


def _module_function(name):
    func = getattr(np, name)

    @functools.wraps(func)
    def call(*args, **kwargs):
        return _op(func, *args, _name=name, **kwargs)

    return call


_FUNCTIONS = (
    "zeros ones empty full zeros_like ones_like empty_like full_like arange eye "
    "exp log sqrt abs absolute maximum minimum where isnan isfinite isinf sign clip "
    "ascontiguousarray pad concatenate stack reshape transpose take sum mean var std max min argmax argmin all any "
    "dot matmul tensordot einsum equal not_equal less less_equal greater greater_equal logical_and logical_or logical_not "
    "multiply add subtract divide true_divide negative power square tanh copy unique bincount nonzero flatnonzero"
).split()
for _name in _FUNCTIONS:
    globals()[_name] = _module_function(_name)


def _sibling(name):
    """A module beside this file (cuda_host.py), also when tests/ is not on sys.path (bench/launches.py)."""
    if name not in sys.modules:
        import importlib.util

        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# -- kernels -------------------------------------------------------------------------------------------------------
class RawModule:
    """``cupy.RawModule``: the source is compiled for the host by cuda_host.py; launches are counted and captured."""

    def __init__(self, code=None, options=(), name_expressions=None, **kwargs):
        cuda_host = _sibling("cuda_host")
        if kwargs:
            raise TypeError(f"the CuPy stand-in's RawModule does not take {sorted(kwargs)}")
        self.code, self.options, self.name_expressions = code, tuple(options), tuple(name_expressions or ())
        self._host = cuda_host.HostModule(code, self.name_expressions)

    def get_function(self, name):
        if name not in self._host.functions:
            raise KeyError(f"{name!r} is not one of this module's name expressions {self.name_expressions}")
        return RawKernel(self._host.functions[name])


class RawKernel:
    def __init__(self, host_kernel):
        self._kernel = host_kernel

    def __call__(self, grid, block, args, shared_mem=0, stream=None):
        _before_touching(args)
        self._kernel(grid, block, args, shared_mem)  # checks every argument, then runs
        stats["launches"] += 1
        stats["raw_kernels"] += 1
        launches_by_name[self._kernel.name] = launches_by_name.get(self._kernel.name, 0) + 1
        _record(lambda: self._kernel(grid, block, args, shared_mem))


# -- streams, graphs, memory ------------------------------------------------------------------------------------------
class Stream:
    def __init__(self, non_blocking=False, null=False):
        self.non_blocking, self.null = non_blocking, null

    def __enter__(self):
        _streams.append(self)
        return self

    def __exit__(self, *exc):
        _streams.pop()

    def synchronize(self):
        if _capture.active is not None:
            raise StreamCaptureError("cudaErrorStreamCaptureUnsupported: synchronize during stream capture")

    def begin_capture(self, mode=None):
        if self.null:
            raise RuntimeError("cudaErrorStreamCaptureUnsupported: the legacy default stream cannot be captured")
        if _capture.active is not None:
            raise RuntimeError("cudaErrorIllegalState: this stream is already capturing")
        _capture.active, _capture.created, _capture.snapshots = [], set(), {}

    def end_capture(self):
        steps, _capture.active = _capture.active, None
        for root, content in _capture.snapshots.values():  # capturing ran nothing, as far as old memory can tell
            root[...] = content
        _capture.created, _capture.snapshots = set(), {}
        return Graph(steps)

    def is_capturing(self):
        return _capture.active is not None

    def record(self, event=None):
        return Event()

    def wait_event(self, event):
        if not isinstance(event, Event):
            raise TypeError(f"wait_event takes a cupy.cuda.Event, got {type(event).__name__}")


class Event:
    """The stand-in runs everything in order, so an event has nothing to wait for."""


_null_stream = Stream(null=True)
_streams = [_null_stream]


class Graph:
    def __init__(self, steps):
        self._steps = steps
        self.launches = 0

    def launch(self, stream=None):
        if _capture.active is not None:
            raise RuntimeError("the stand-in cannot capture a graph launch")
        stats["launches"] += 1
        self.launches += 1
        for step in self._steps:
            step()

    def upload(self, stream=None):
        pass


class MemoryPool:
    def __init__(self, allocator=None):
        self.freed = 0

    def malloc(self, size):
        return None

    def free_all_blocks(self, stream=None):
        self.freed += 1

    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0


_default_pool = MemoryPool()


def get_default_memory_pool():
    return _default_pool


@contextlib.contextmanager
def _using_allocator(allocator=None):
    yield


def _get_current_stream():
    return _streams[-1]


def _device_count():
    return 1


def _device_properties(device):
    return {"name": b"CuPy stand-in (host)", "totalGlobalMem": 80 * 2**30, "multiProcessorCount": 132}


cuda = types.SimpleNamespace(
    Stream=Stream,
    Event=Event,
    Graph=Graph,
    MemoryPool=MemoryPool,
    using_allocator=_using_allocator,
    get_current_stream=_get_current_stream,
    runtime=types.SimpleNamespace(getDeviceCount=_device_count, getDeviceProperties=_device_properties,
                                  driverGetVersion=lambda: 13000, runtimeGetVersion=lambda: 13000),
    memory=types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError),
    Device=lambda i=0: types.SimpleNamespace(id=i, compute_capability="90", synchronize=lambda: None),
)


@contextlib.contextmanager
def installed():
    """Make ``import cupy`` give this module, and tinynet's "cupy" backend use it, for the duration."""
    import tinynet.backend
    import tinynet.kernels
    from tinynet import optional

    this = sys.modules[__name__]
    # cupyx (real CuPy's extras, lazily imported) would import the stand-in as if it were CuPy: hide it too
    hidden = [k for k in sys.modules if k == "cupyx" or k.startswith("cupyx.")]
    saved_modules = {k: sys.modules.get(k) for k in ("cupy", "tinynet.kernels.cupy_gpu", *hidden)}
    for k in hidden:
        del sys.modules[k]
    saved = (dict(optional._modules), dict(optional._reasons), dict(tinynet.backend._cache))
    saved_attr = tinynet.kernels.__dict__.get("cupy_gpu")
    sys.modules["cupy"] = this
    sys.modules.pop("tinynet.kernels.cupy_gpu", None)
    tinynet.kernels.__dict__.pop("cupy_gpu", None)
    for d in (optional._modules, optional._reasons, tinynet.backend._cache):
        d.pop("cupy", None)
    reset_stats()
    try:
        yield this
    finally:
        current = tinynet.backend._current
        for k, v in saved_modules.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
        tinynet.kernels.__dict__.pop("cupy_gpu", None)
        if saved_attr is not None:
            tinynet.kernels.cupy_gpu = saved_attr
        for d, old in zip((optional._modules, optional._reasons, tinynet.backend._cache), saved, strict=True):
            d.clear()
            d.update(old)
        if current == "cupy":
            tinynet.backend._current = "numpy"


def reset_stats():
    global memory_limit
    memory_limit = None
    for k in stats:
        stats[k] = 0
    launches_by_name.clear()


ndarray.__module__ = "cupy"  # how tinynet's error messages name the array's library, as for a real CuPy array
