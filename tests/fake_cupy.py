"""A stand-in for CuPy that is as strict as CuPy about host and device, for tests on machines without a GPU.

Install it with the ``fake_cupy`` fixture (conftest.py): ``import cupy`` then gives this module, and the
"cupy" backend runs tinynet's real CUDA kernels (tinynet/kernels/cupy_gpu.cu), compiled for the host by
cuda_host.py. Device memory is played by NumPy arrays hidden inside :class:`ndarray`. What CuPy refuses,
this refuses too, so a host/device mix-up anywhere in tinynet fails a test here:

- ``np.asarray(device_array)`` and any other implicit conversion raise ``TypeError`` (CuPy's message);
- an operation mixing a device array with a NumPy array raises ``TypeError``;
- reductions return 0-d device arrays, never host scalars;
- host <-> device transfers happen only through ``cupy.asarray``, ``cupy.asnumpy``, ``.get()``, ``.item()``,
  ``.tolist()``, ``float()``, ``int()`` and ``bool()`` (each counted in ``stats``);
- a name, keyword or positional argument that CuPy 14.2.0 lacks raises ``AttributeError`` or ``TypeError``
  (the contract, below).

Stricter than CuPy, on purpose (tinynet should not depend on these implicit transfers): indexing or
assigning with NumPy arrays, and kernel scalars that are not NumPy scalars of the kernel's C type.

CUDA graphs follow CuPy 14.2.0's and CUDA's rules, each cited where it is modelled (section "streams, graphs"
below): a capture records the launches issued to the capturing stream without running them; memory from before
the capture is unchanged by capturing and memory made during it holds garbage until the graph runs; cuBLAS
(matmul, dot, tensordot, einsum, ``@``) is refused while the current stream captures, host transfers too;
synchronising a capturing stream invalidates the capture, and ``end_capture`` then fails. ``stats`` counts
kernel launches per kind so tests and the benchmark can count them.

It is a test double, not a feature: only what tinynet uses is here, and nothing CuPy 14.2.0 lacks.

The contract with CuPy 14.2.0 (tests/cupy_api.py, checked by tests/test_cupy_contract.py): every name offered as
CuPy's (``__all__``, the ``cuda`` namespace, the members of the classes, the ndarray methods in ``_METHODS``)
exists in CuPy 14.2.0; any other name is absent (``d.resize``, which CuPy lacks, raises ``AttributeError``, as
does ``d.ptp``, which tinynet does not use) or listed, with why, as the stand-in's own in ``_NOT_CUPY``. Calls
are refused as CuPy refuses them: a function or method forwarded to NumPy is bound at each call to CuPy's
signature, read from the committed table tests/cupy_api_14_2.json, so a keyword NumPy takes and CuPy does not
(``d.sum(where=...)``, ``cupy.zeros(3, like=None)``) or a positional argument too many raises ``TypeError``
naming the function; the stand-in's own functions (``asarray``, ``.get()``, ``Stream``...) take a subset of
CuPy's parameters and require what CuPy requires, as the contract test checks, so Python's own binding refuses the rest.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import numbers
import sys
import types
import weakref
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


class CUDARuntimeError(RuntimeError):
    """CuPy's ``cupy.cuda.runtime.CUDARuntimeError`` (cupy_backends/cuda/api/runtime.pyx): "name: description"."""

    TEXT = {
        401: "cudaErrorIllegalState: the operation cannot be performed in the present state",
        900: "cudaErrorStreamCaptureUnsupported: operation not permitted when stream is capturing",
        901: "cudaErrorStreamCaptureInvalidated: operation failed due to a previous error during capture",
        905: "cudaErrorStreamCaptureIsolation: dependency created on uncaptured work in another stream",
        906: "cudaErrorStreamCaptureImplicit: operation would make the legacy stream depend on a capturing blocking stream",
    }

    def __init__(self, status):
        self.status = status
        super().__init__(self.TEXT[status])

    def __reduce__(self):
        return (type(self), (self.status,))


class OutOfMemoryError(MemoryError):
    pass


def _host_read(what, direction="D2H"):
    """Anything that brings data to the host: refused while the current stream captures.

    cupy/cuda/memory.pyx, ``MemoryPointer.copy_to_host_async`` (which ``ndarray.get``, ``float()``, ``int()``,
    ``item()`` and ``tolist()`` reach) checks ``runtime.streamIsCapturing`` of the current stream before copying.
    CuPy raises before calling CUDA, so the capture itself stays valid.
    """
    if _capturing():
        raise RuntimeError(f"the current stream is capturing, so {direction} transfers are disallowed")
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
    """The capture under way, if any (the stand-in models one at a time).

    ``active`` is the list of replayable steps. A real capture only records: nothing runs until the graph
    is launched. The stand-in has to run each operation to know its result's shape, so it snapshots every
    buffer that existed before the capture when an operation first touches it, and puts it back at
    ``end_capture``: memory from before the capture is unchanged by capturing, as on a GPU. Buffers made
    during the capture are filled with garbage (0xFF bytes: NaN, or -1) at ``end_capture``, as on a GPU,
    where they hold nothing until the graph runs.
    """

    stream = None  # the Stream capturing
    mode = None
    active: list | None = None
    invalid: CUDARuntimeError | None = None  # what invalidated the capture, if anything did
    number = 0  # counts captures: an Event remembers the capture it was recorded in
    created: set = set()  # ids of root buffers allocated during the capture
    created_refs: list = []  # weak references to them
    snapshots: dict = {}  # id of a root buffer from before -> (buffer, its content when first touched)


_capture = _Capture()

# cupy_backends/cuda/api/runtime.pxd: cudaStreamCaptureMode
STREAM_CAPTURE_MODE_GLOBAL, STREAM_CAPTURE_MODE_THREAD_LOCAL, STREAM_CAPTURE_MODE_RELAXED = 0, 1, 2


def _capturing():
    """True while the current stream is the one capturing (what CuPy's guards ask: streamIsCapturing(current))."""
    return _capture.active is not None and _get_current_stream() is _capture.stream


def _invalidate(status):
    """An operation CUDA refuses during capture: it fails, and so does everything after it, end_capture included."""
    if _capture.invalid is None:
        _capture.invalid = CUDARuntimeError(status)
    raise CUDARuntimeError(status)


# cupy_backends/cuda/libs/cublas.pyx, ``setStream`` (called by every cuBLAS wrapper through ``_setStream`` with the
# current stream) raises this while the stream captures; cupy/_core/_routines_linalg.pyx ``tensordot_core`` sends
# float and complex products there (integer ones run CuPy's own kernel). cuRAND, cuSOLVER and cuSPARSE have the same
# guard (curand.pyx, cusolver.pyx, cusparse.pyx ``setStream``); the stand-in has no random, linalg or sparse at all.
# Stricter than CuPy: einsum is refused whatever it contracts (CuPy sends most contractions to cuBLAS).
_CUBLAS = {np.matmul, np.dot, np.tensordot, np.einsum, np.inner, np.vdot, np.ndarray.dot}
_CUBLAS_REFUSAL = "calling cuBLAS API during stream capture is currently unsupported"


def _check_stream_use(func, args, kwargs):
    """What CUDA and CuPy say about an operation issued while a capture is under way (None: it may run)."""
    if _capture.active is None:
        return
    current = _get_current_stream()
    if current is not _capture.stream:
        # CUDA Programming Guide, "Prohibited and unhandled operations": while a stream that is not non-blocking
        # captures, using the legacy stream is invalid (cudaErrorStreamCaptureImplicit). Other streams run now.
        if current.null and not _capture.stream.non_blocking:
            _invalidate(906)
        touched = {id(root) for root in _root_buffers(_all_arrays(args, kwargs))}
        if touched & (set(_capture.snapshots) | _capture.created):  # a limit of the stand-in, not of CUDA
            raise NotImplementedError("the CuPy stand-in cannot run work on another stream on memory the capture uses")
        return
    if _capture.invalid is not None:  # launches into an invalidated capture fail
        raise CUDARuntimeError(901)
    if func in _CUBLAS and builtins.any(a.dtype.kind in "fc" for a in _all_arrays(args, kwargs)):
        raise NotImplementedError(_CUBLAS_REFUSAL)


def _root_buffers(arrays):
    """The memory buffers behind device arrays (a view's base)."""
    out = []
    for a in arrays:
        if isinstance(a, ndarray):
            root = a._device_memory
            while isinstance(root.base, np.ndarray):
                root = root.base
            out.append(root)
    return out


def _roots(arrays):
    """The memory buffers behind device arrays, while the current stream captures."""
    return _root_buffers(arrays) if _capturing() else []


def _before_touching(arrays):
    for root in _roots(arrays):  # memory from before the capture: keep what it held
        if id(root) not in _capture.created and id(root) not in _capture.snapshots:
            _capture.snapshots[id(root)] = (root, root.copy())


def _after_creating(results):
    for root in _roots(results):  # new memory: the capture's own
        if id(root) not in _capture.snapshots and id(root) not in _capture.created:
            # cudaMalloc is a "potentially unsafe" call, refused outside relaxed mode (CUDA runtime API,
            # cudaThreadExchangeStreamCaptureMode; why CuPy's begin_capture defaults to relaxed, stream.pyx)
            if _capture.mode != STREAM_CAPTURE_MODE_RELAXED:
                _invalidate(900)
            _capture.created.add(id(root))
            _capture.created_refs.append(weakref.ref(root))


def _record(replay):
    if _capturing():
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
    _check_stream_use(func, args, kwargs)
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
        if views or func in _NO_LAUNCH:  # nothing was launched: nothing to replay
            return
        again = func(*_unwrap(args, name), **{k: _unwrap(v, name) for k, v in kwargs.items()})
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


# -- the contract with CuPy 14.2.0 (tests/cupy_api.py) ----------------------------------------------------------------
def _contract():
    """tests/cupy_api.py, holding CuPy 14.2.0's signatures (read from the committed table at the first call)."""
    return _sibling("cupy_api")


def _checked(path, call, target, is_method=False):
    """``call``, which forwards to NumPy's ``target``, refusing first what CuPy's ``cupy.<path>`` refuses.

    NumPy takes more than CuPy (``where=`` and ``initial=`` in reductions, ``like=`` in constructors): binding
    each call to CuPy's signature keeps the stand-in from accepting them. ``_cupy_forwards_to`` tells the contract
    test that NumPy's own signature is behind this binding.
    """

    @functools.wraps(target)  # NumPy's name and docstring; inspect.signature reads NumPy's parameters (__wrapped__)
    def checked(*args, **kwargs):
        _contract().bind(path, args[1:] if is_method else args, kwargs, target, is_method)
        return call(*args, **kwargs)

    checked._cupy_forwards_to = target
    return checked


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
    def __array__(self, dtype=None):  # CuPy's signature (NumPy 2 warns that it takes no copy=, as with CuPy)
        raise TypeError(_IMPLICIT)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """np.exp(device) -> device: CuPy calls its own ufunc of that name (cupy/_core/core.pyx), with its signature."""
        if method != "__call__":
            return NotImplemented
        if ufunc.__name__ not in __all__:
            raise TypeError(f"the CuPy stand-in has no {ufunc.__name__}")
        _contract().bind(ufunc.__name__, inputs, kwargs)
        return _op(ufunc, *inputs, _name=ufunc.__name__, **kwargs)

    def __array_function__(self, func, types, args, kwargs):  # np.take(device, ...) -> cupy.take, as CuPy does
        if func.__name__ not in __all__:
            raise TypeError(f"the CuPy stand-in has no {func.__name__}")
        return getattr(sys.modules[__name__], func.__name__)(*args, **kwargs)

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

    def __bool__(self):
        _host_read("bool(device array)")
        return bool(self._device_memory)

    def __repr__(self):
        _host_read("repr(device array)")
        return "fake_cupy." + repr(self._device_memory)

    def __format__(self, format_spec):
        _host_read("format(device array)")
        return format(self._device_memory[()] if self.ndim == 0 else self._device_memory, format_spec)

    def __reduce__(self):
        raise TypeError("the CuPy stand-in refuses pickling (copying a device array means a transfer)")

    def __deepcopy__(self, memo):
        return _op(np.copy, self, _name="deepcopy")

    def __copy__(self):
        return self.copy()

    # indexing
    def __getitem__(self, slices):  # CuPy's parameter names, here and below
        _check_index(slices)
        if isinstance(slices, ndarray) and slices.dtype == np.bool_:
            _host_read("boolean-mask indexing (CuPy synchronises to count the selected elements)")
        return _op(lambda a, k: a[k], self, slices, _name="getitem")

    def __setitem__(self, slices, value):
        _check_index(slices)

        def assign(a, k, v):
            a[k] = v

        _op(assign, self, slices, value, _name="setitem")

    def __getattr__(self, name):  # reached only for a name the class lacks: say where the offered ones are listed
        raise AttributeError(f"the CuPy stand-in's ndarray has no attribute {name!r} (it offers the methods tinynet "
                             "uses, _METHODS in tests/fake_cupy.py, each of which CuPy 14.2.0 has)")

    def view(self, dtype=None):
        return _op(lambda a: a.view(dtype), self, _name="view")


# The NumPy methods offered on device arrays: those tinynet, its tests and the benchmark call on them (found by running
# the tests with every attribute access logged, and by grepping tinynet/, bench/ and tests/). Each is forwarded to
# NumPy's method of that name, after binding the call to CuPy 14.2.0's signature; any other name is absent, as
# NumPy methods that CuPy lacks (resize, setflags, to_device...) are in CuPy.
_METHODS = "all any argmax argmin astype copy dot fill max mean min reshape std sum transpose var".split()


def _method(name):
    target = getattr(np.ndarray, name)

    def method(self, *args, **kwargs):
        return _op(target, self, *args, _name=f"ndarray.{name}", **kwargs)

    return _checked(f"ndarray.{name}", method, target, is_method=True)


def _check_index(key):
    for k in key if isinstance(key, tuple) else (key,):
        if isinstance(k, np.ndarray):
            raise TypeError(f"indexing a device array with a NumPy array ({k.dtype}{list(k.shape)}): transfer it first")
        if isinstance(k, list):
            raise TypeError("indexing a device array with a Python list: make it a device array first")


def _binary(name, ufunc, reflected=False):
    def method(self, other, /):  # positional only, as CuPy's operators
        if isinstance(other, np.ndarray):
            raise TypeError(f"Unsupported type {type(other)}: {name} of a CuPy array and a NumPy array")
        if not isinstance(other, (ndarray, numbers.Number, np.generic)):
            return NotImplemented
        return _op(ufunc, other, self, _name=name) if reflected else _op(ufunc, self, other, _name=name)

    return method


def _inplace(name, ufunc):
    def method(self, other, /):
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
    if _n != "matmul":  # CuPy has no __imatmul__: ``a @= b`` is ``a = a @ b``, a new array
        setattr(ndarray, f"__i{_n}__", _inplace(_n, _u))
for _n, _u in {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal, "eq": np.equal,
               "ne": np.not_equal}.items():
    setattr(ndarray, f"__{_n}__", _binary(_n, _u))
ndarray.__neg__ = lambda self: _op(np.negative, self)
ndarray.__abs__ = lambda self: _op(np.absolute, self)
ndarray.__invert__ = lambda self: _op(np.invert, self)
ndarray.__hash__ = None
for _n in _METHODS:
    setattr(ndarray, _n, _method(_n))


# -- module-level functions ------------------------------------------------------------------------------------------
def asarray(a, dtype=None, order=None):
    """The explicit host -> device transfer (or a no-op / cast for device arrays)."""
    if isinstance(a, ndarray):
        return a if dtype is None or np.dtype(dtype) == a.dtype else a.astype(dtype)
    if _capturing():  # cupy/cuda/memory.pyx, MemoryPointer.copy_from_host_async
        raise RuntimeError("the current stream is capturing, so H2D transfers are disallowed")
    stats["to_device"] += 1
    return ndarray(np.array(a, dtype=dtype, order=order or "K", copy=True))


def array(obj, dtype=None, copy=True, order="K"):
    """``cupy.array``: as ``asarray``, but a device array is copied unless ``copy=False``."""
    if isinstance(obj, ndarray) and copy:
        return _op(np.array, obj, dtype=dtype, order=order, _name="array")
    return asarray(obj, dtype=dtype, order=order)


def asnumpy(a, stream=None):
    if isinstance(a, ndarray):
        return a.get()
    return np.asarray(a)


def _module_function(name):
    func = getattr(np, name)

    def call(*args, **kwargs):
        return _op(func, *args, _name=name, **kwargs)

    return _checked(name, call, func)


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

    __slots__ = ("code", "options", "name_expressions", "_host")

    def __init__(self, code=None, *, options=(), name_expressions=None):  # CuPy's options are keyword-only too
        cuda_host = _sibling("cuda_host")
        self.code, self.options, self.name_expressions = code, tuple(options), tuple(name_expressions or ())
        self._host = cuda_host.HostModule(code, self.name_expressions)

    def get_function(self, name):
        if name not in self._host.functions:
            raise KeyError(f"{name!r} is not one of this module's name expressions {self.name_expressions}")
        return RawKernel._from_host(self._host.functions[name])


class RawKernel:
    """``cupy.RawKernel``, made only by ``RawModule.get_function``: the stand-in compiles whole modules."""

    __slots__ = ("_kernel",)

    def __init__(self, code, name, options=()):
        raise NotImplementedError("the CuPy stand-in makes kernels only with RawModule(...).get_function(name)")

    @classmethod
    def _from_host(cls, host_kernel):
        kernel = cls.__new__(cls)
        kernel._kernel = host_kernel
        return kernel

    def __call__(self, grid, block, args, **kwargs):
        """cupy/_core/raw.pyx ``RawKernel.__call__`` passes ``kwargs`` to cupy/cuda/function.pyx ``Function.__call__``
        (``tuple grid, tuple block, args, size_t shared_mem=0, stream=None``)."""
        if not isinstance(grid, tuple) or not isinstance(block, tuple):
            raise TypeError(f"grid and block must be tuples (Function.__call__), got {type(grid).__name__} and "
                            f"{type(block).__name__}")
        unknown = set(kwargs) - {"shared_mem", "stream"}
        if unknown:
            raise TypeError(f"__call__() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        shared_mem, stream = kwargs.get("shared_mem", 0), kwargs.get("stream")
        with contextlib.nullcontext() if stream is None else stream:
            _check_stream_use(None, args, {})
            _before_touching(args)
            self._kernel(grid, block, args, shared_mem)  # checks every argument, then runs
            stats["launches"] += 1
            stats["raw_kernels"] += 1
            launches_by_name[self._kernel.name] = launches_by_name.get(self._kernel.name, 0) + 1
            _record(lambda: self._kernel(grid, block, args, shared_mem))


# -- streams, graphs, memory ------------------------------------------------------------------------------------------
class Stream:
    """``cupy.cuda.Stream`` (cupy/cuda/stream.pyx); the capture rules are CuPy's and CUDA's, cited per method."""

    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None):
        self.null, self.non_blocking = null, non_blocking

    def __enter__(self):
        _streams.append(self)
        return self

    def __exit__(self, *exc):
        _streams.pop()

    def use(self):
        _streams[-1] = self
        return self

    def synchronize(self):
        # cudaStreamSynchronize of a capturing stream (CUDA Programming Guide, "Prohibited and unhandled
        # operations": synchronising or querying a capturing stream is invalid) fails and invalidates the capture;
        # on the legacy stream it would wait for a capturing blocking stream (cudaErrorStreamCaptureImplicit).
        if _capture.active is not None:
            if self is _capture.stream:
                _invalidate(900)
            if self.null and not _capture.stream.non_blocking:
                _invalidate(906)

    @property
    def done(self):
        if _capture.active is not None and self is _capture.stream:  # cudaStreamQuery: as synchronize
            _invalidate(900)
        return True

    def begin_capture(self, mode=None):
        """stream.pyx ``_BaseStream.begin_capture``: never on the legacy stream; relaxed mode unless told otherwise."""
        if self.null:
            raise RuntimeError("cannot capture on the default (legacy) stream")
        if _capture.active is not None:
            if self is _capture.stream:  # cudaStreamBeginCapture on a capturing stream
                raise CUDARuntimeError(401)
            raise NotImplementedError("the CuPy stand-in models one capture at a time")
        _capture.stream, _capture.mode = self, STREAM_CAPTURE_MODE_RELAXED if mode is None else mode
        _capture.active, _capture.invalid, _capture.number = [], None, _capture.number + 1
        _capture.created, _capture.created_refs, _capture.snapshots = set(), [], {}

    def end_capture(self):
        """cudaStreamEndCapture: on the capturing stream only; an invalidated capture ends with its error."""
        if _capture.active is None or self is not _capture.stream:
            raise CUDARuntimeError(401)
        steps, invalid = _capture.active, _capture.invalid
        for root, content in _capture.snapshots.values():  # capturing ran nothing, as far as old memory can tell
            root[...] = content
        for ref in _capture.created_refs:  # and memory made while capturing holds nothing yet
            root = ref()
            if root is not None and root.size:
                root.reshape(-1).view(np.uint8)[...] = 0xFF
        _capture.stream = _capture.mode = _capture.active = _capture.invalid = None
        _capture.created, _capture.created_refs, _capture.snapshots = set(), [], {}
        if invalid is not None:
            raise CUDARuntimeError(901)
        return Graph._from_steps(steps)

    def is_capturing(self):
        """runtime.pyx ``streamIsCapturing``: an invalidated capture is an error, not False."""
        if _capture.active is None or self is not _capture.stream:
            return False
        if _capture.invalid is not None:
            raise RuntimeError("the stream was capturing, but an error has invalidated the capture sequence")
        return True

    def record(self, event=None):
        event = Event() if event is None else event
        if not isinstance(event, Event):
            raise TypeError(f"record takes a cupy.cuda.Event, got {type(event).__name__}")
        event._capture = _capture.number if _capture.active is not None and self is _capture.stream else None
        return event

    def wait_event(self, event):
        if not isinstance(event, Event):
            raise TypeError(f"wait_event takes a cupy.cuda.Event, got {type(event).__name__}")
        # CUDA Programming Guide, "Cross-stream dependencies and events": a capturing stream may wait only for an
        # event recorded in the same capture (waiting for other work is cudaErrorStreamCaptureIsolation).
        if _capture.active is not None and self is _capture.stream and event._capture != _capture.number:
            _invalidate(905)


class Event:
    """The stand-in runs everything in order, so an event has nothing to wait for; it remembers its capture."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self._capture = None

    def synchronize(self):
        if _capture.active is not None and self._capture == _capture.number:  # a captured event has not happened
            _invalidate(900)

    @property
    def done(self):
        self.synchronize()
        return True


_null_stream = Stream(null=True)
_streams = [_null_stream]


class Graph:
    """``cupy.cuda.Graph``: made only by ``Stream.end_capture`` (cupy/cuda/graph.pyx refuses ``Graph()``)."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError("currently this class cannot be initiated by the user and must be created via "
                                  "stream capture")

    @classmethod
    def _from_steps(cls, steps):
        graph = cls.__new__(cls)
        graph._steps, graph.launches = steps, 0
        return graph

    def launch(self, stream=None):
        target = _get_current_stream() if stream is None else stream
        if _capture.active is not None and target is _capture.stream:  # CUDA can; the stand-in does not model it
            raise NotImplementedError("the CuPy stand-in cannot capture a graph launch")
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


def _device_synchronize():
    """cudaDeviceSynchronize waits for every stream, a capturing one too: invalid while any stream captures."""
    if _capture.active is not None:
        _invalidate(900)


class _Device:
    """``cupy.cuda.Device``: the stand-in has one device."""

    __slots__ = ("id",)
    compute_capability = "90"

    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)

    def synchronize(self):
        _device_synchronize()


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
    Device=_Device,
)


# What the stand-in offers as CuPy's, each name in CuPy 14.2.0 (tests/test_cupy_contract.py checks it)
__all__ = ("__version__", "ndarray", "asarray", "array", "asnumpy", "get_default_memory_pool", "RawModule", "RawKernel",
           "cuda", "bool_", "float32", "float64", "int8", "int32", "int64", "uint8", "uint64", *_FUNCTIONS)

# The stand-in's own names, not CuPy's: tinynet must not use them (tests and bench/launches.py may), and why each is here
_NOT_CUPY = {
    "IS_STANDIN": "tells tests and the benchmark they run on the stand-in",
    "memory_limit": "a test sets it to make allocations fail",
    "stats": "counts launches and transfers, for tests and bench/launches.py",
    "launches_by_name": "counts launches per kernel, for bench/launches.py",
    "installed": "installs the stand-in as cupy",
    "reset_stats": "clears stats and memory_limit",
    "Stream": "the class behind cuda.Stream (CuPy has it only there)",
    "Event": "the class behind cuda.Event",
    "Graph": "the class behind cuda.Graph",
    "MemoryPool": "the class behind cuda.MemoryPool",
    "OutOfMemoryError": "the class behind cuda.memory.OutOfMemoryError",
    "CUDARuntimeError": "CuPy's cupy_backends.cuda.api.runtime.CUDARuntimeError, raised by the capture rules",
    "STREAM_CAPTURE_MODE_GLOBAL": "cupy.cuda.runtime.streamCaptureModeGlobal, for the capture rules",
    "STREAM_CAPTURE_MODE_THREAD_LOCAL": "cupy.cuda.runtime.streamCaptureModeThreadLocal, for the capture rules",
    "STREAM_CAPTURE_MODE_RELAXED": "cupy.cuda.runtime.streamCaptureModeRelaxed, for the capture rules",
    "ndarray.__getattr__": "only raises AttributeError, naming where the offered methods are listed",
    "cuda.Stream.non_blocking": "the capture rules read it (CuPy keeps the flag private: Stream.is_non_blocking())",
    "cuda.Graph.launches": "counts a graph's launches, for tests",
    "cuda.MemoryPool.freed": "counts free_all_blocks calls, for tests",
}


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
