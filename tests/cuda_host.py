"""Run the CUDA kernels that ship (tinynet/kernels/cupy_gpu.cu) on the host, for tests without a GPU.

The same source text that NVRTC compiles is compiled by g++ as C++, with a small shim
(cuda_host_shim.h) standing in for CUDA's built-ins. For every ``template <typename T> __global__``
kernel this module generates a C launcher per T that runs the grid's blocks and threads one after
another, and calls it through ctypes. Serial threads compute what the GPU computes because the kernels
share nothing between threads (cupy_gpu.cu's rules).

Why this route and not numba-cuda's simulator (the other honest way to run GPU code without a GPU): the
kernels tinynet ships are CUDA C compiled by NVRTC through CuPy, and this runs that very text, so the
compile gate (test_cuda_compile.py) and these tests check one source. Writing the kernels in numba-cuda
instead would add a second compiler and dependency on the GPU machine, and its simulator interprets
every thread in Python. Measured here: g++ builds all 22 instantiations in 0.6 s (cached afterwards), and
the 155 tests that run on the "cupy-standin" backend take about a minute in all.

Arguments are checked the way a GPU would punish a mistake: an array argument must have the kernel's
element type and be C-contiguous (the kernel indexes it as a flat buffer), and cannot be None (CuPy
turns None into a NULL argument slot, which the launch dereferences), a scalar must be a NumPy scalar
of exactly the parameter's C type (CuPy passes a Python int as 8 bytes and a Python float as a double,
which an ``int`` or ``float`` parameter would misread), and the argument count must match. Only a
parameter marked STRIDED in the source (gemm's operands, read through the strides passed beside them) may
be a non-contiguous view; it is passed as CuPy passes any array, by the address of its first element.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).resolve().parents[1] / "tinynet" / "kernels" / "cupy_gpu.cu"
SHIM = Path(__file__).with_name("cuda_host_shim.h")
FLAGS = ["-O2", "-std=c++17", "-shared", "-fPIC", "-ffp-contract=off", "-Wall", "-Werror"]

# C type of a parameter -> (NumPy dtype it must have, ctypes type). "T" is filled in per instantiation.
_SCALARS = {
    "int": (np.int32, ctypes.c_int32),
    "long long": (np.int64, ctypes.c_int64),
    "unsigned long long": (np.uint64, ctypes.c_uint64),
    "float": (np.float32, ctypes.c_float),
    "double": (np.float64, ctypes.c_double),
    "signed char": (np.int8, ctypes.c_int8),
}
_KERNEL = re.compile(r"template\s*<typename T>\s*__global__\s+void\s+(\w+)\s*\(([^)]*)\)", re.S)


class Param:
    def __init__(self, text: str):
        words = text.replace("__restrict__", " ").replace("*", " * ").split()
        self.name = words[-1]
        self.pointer = "*" in words
        self.strided = "STRIDED" in words  # read through strides passed beside it: may be a non-contiguous view
        self.ctype = " ".join(w for w in words[:-1] if w not in ("const", "*", "STRIDED"))

    def resolved(self, t: str) -> str:
        return t if self.ctype == "T" else self.ctype


def kernels_in(source: str) -> dict[str, list[Param]]:
    """Every templated __global__ kernel in ``source`` with its parameters."""
    return {name: [Param(p) for p in params.split(",")] for name, params in _KERNEL.findall(source)}


def _launcher(name, params, t):
    args = ", ".join(f"{'const ' if p.pointer else ''}{p.resolved(t)}{'*' if p.pointer else ''} {p.name}" for p in params)
    call = ", ".join(p.name if not p.pointer else f"({p.resolved(t)}*){p.name}" for p in params)
    return (
        f'extern "C" void launch_{name}_{t}(unsigned tinynet_grid, unsigned tinynet_block{", " if args else ""}{args}) {{\n'
        f"    gridDim = {{tinynet_grid, 1, 1}}; blockDim = {{tinynet_block, 1, 1}};\n"
        f"    for (unsigned tinynet_b = 0; tinynet_b < tinynet_grid; ++tinynet_b)\n"
        f"        for (unsigned tinynet_i = 0; tinynet_i < tinynet_block; ++tinynet_i) {{\n"
        f"            blockIdx = {{tinynet_b, 0, 0}}; threadIdx = {{tinynet_i, 0, 0}};  // names no kernel parameter takes\n"
        f"            {name}<{t}>({call});\n"
        f"        }}\n}}\n"
    )


class HostKernel:
    """One instantiation, called like CuPy's RawKernel: ``kernel(grid, block, args)``."""

    def __init__(self, lib, name, params, t):
        self.name, self.params, self.t = f"{name}<{t}>", params, t
        self.fn = getattr(lib, f"launch_{name}_{t}")
        self.fn.restype = None
        self.launches = 0

    def __call__(self, grid, block, args, shared_mem=0, stream=None):
        if shared_mem:
            raise ValueError(f"{self.name}: tinynet's kernels use no shared memory")
        grid, block = tuple(grid), tuple(block)
        if len(grid) != 1 or len(block) != 1 or not 1 <= block[0] <= 1024 or not 1 <= grid[0] < 2**31:
            raise ValueError(f"{self.name}: bad launch configuration grid={grid} block={block}")
        if len(args) != len(self.params):
            raise TypeError(f"{self.name} takes {len(self.params)} arguments, got {len(args)}")
        cargs = [ctypes.c_uint(int(grid[0])), ctypes.c_uint(int(block[0]))]
        for p, a in zip(self.params, args, strict=True):
            cargs.append(self._convert(p, a))
        self.launches += 1
        self.fn(*cargs)

    def _convert(self, p, a):
        want, ctype = _SCALARS[p.resolved(self.t)]
        if p.pointer:
            if a is None:  # CuPy puts a NULL where the argument's address should be: the launch reads address 0
                raise TypeError(f"{self.name}: argument {p.name} is None; CuPy cannot pass a NULL pointer to a kernel")
            buf = device_buffer(a)
            if buf.dtype != np.dtype(want):
                raise TypeError(f"{self.name}: argument {p.name} must be a {np.dtype(want)} array, got {buf.dtype}")
            if not buf.flags.c_contiguous and not p.strided:
                raise ValueError(f"{self.name}: argument {p.name} is not C-contiguous; the kernel reads it as a flat buffer")
            return ctypes.c_void_p(buf.ctypes.data)
        if type(a) is not np.dtype(want).type:
            raise TypeError(
                f"{self.name}: argument {p.name} is a C {p.resolved(self.t)}, pass numpy.{np.dtype(want).name}, "
                f"not {type(a).__name__} (CuPy would pass a Python int as 8 bytes and a float as a double)"
            )
        return ctype(a)


def device_buffer(a):
    """The host memory behind a stand-in device array (fake_cupy.ndarray); a plain NumPy array is refused."""
    buf = getattr(a, "_device_memory", None)
    if buf is None:
        raise TypeError(f"a kernel argument must be a device array, got {type(a).__name__}")
    return buf


class HostModule:
    """What ``cupy.RawModule(code=..., name_expressions=...)`` gives, compiled for the host."""

    def __init__(self, code: str, name_expressions=()):
        self.code = code
        self.kernels = kernels_in(code)
        wrappers = "".join(_launcher(n, ps, t) for n, ps in self.kernels.items() for t in ("float", "double"))
        text = f'#include "{SHIM}"\n#line 1 "{SOURCE.name}"\n{code}\n// generated launchers\n{wrappers}'
        self.lib = ctypes.CDLL(str(_build(text)))
        self.functions = {}
        for expr in name_expressions:
            name, t = re.fullmatch(r"(\w+)<(float|double)>", expr).groups()
            self.functions[expr] = HostKernel(self.lib, name, self.kernels[name], t)

    def get_function(self, name_expression: str) -> HostKernel:
        return self.functions[name_expression]


def _build(text: str) -> Path:
    key = hashlib.sha256((text + " ".join(FLAGS) + SHIM.read_text()).encode()).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / f"tinynet_cuda_host_{key}.so"
    if not out.exists():
        src = out.with_suffix(".cpp")
        src.write_text(text)
        tmp = out.with_suffix(f".{id(text)}.tmp")
        run = subprocess.run(["g++", *FLAGS, str(src), "-o", str(tmp)], capture_output=True, text=True)
        if run.returncode:
            raise RuntimeError(f"g++ could not compile the CUDA kernels for the host:\n{run.stderr}")
        tmp.replace(out)  # atomic: parallel test processes never load a half-written library
    return out


def load(name_expressions=()) -> HostModule:
    return HostModule(SOURCE.read_text(), name_expressions)
