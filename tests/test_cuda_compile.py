"""The CUDA compile gate: every shipped kernel compiles with NVRTC exactly as CuPy would, without a GPU.

tinynet's kernels are one ``cupy.RawModule`` (tinynet/kernels/cupy_gpu.py). On a GPU, CuPy compiles it on
first use: ``RawModule`` -> ``_get_raw_module`` -> ``compile_with_cache`` (adds CuPy's include paths and
``--std``) -> ``_compile_with_cache_cuda`` (adds ``-ftz=true``) -> NVRTC with ``-arch=sm_XX``. This test
runs that same chain, from the same RawModule object tinynet builds, with three changes that let it run
without a device: the architecture is given instead of read from the device, the in-memory cache is used
(a cached cubin on disk would skip the compile), and the compiled cubin is kept instead of loaded onto a
device. Every instantiation (float and double) must compile for sm_80 and sm_90 (H100), and any NVRTC
warning counts as an error; NVRTC's log is in the failure message.

Needs ``pip install -e '.[cuda-compile]'`` (CuPy and NVRTC wheels; no driver). In CI (``CI`` set) a missing
CuPy or a CuPy whose internals moved fails the test with the reason; elsewhere a missing CuPy skips it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import types

import pytest

ARCHS = ["80", "90"]


def _need(condition, what):
    if not condition:
        pytest.fail(f"CuPy's internals moved ({what}); tests/test_cuda_compile.py must be updated for "
                    f"cupy {sys.modules['cupy'].__version__}")


def _real_cupy():
    try:
        import cupy
        from cupy._core import raw
        from cupy.cuda import compiler, function
    except Exception as exc:  # ImportError, or CUDA libraries missing
        reason = f"the CUDA compile gate needs CuPy and NVRTC: pip install -e '.[cuda-compile]' ({exc})"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    if getattr(cupy, "IS_STANDIN", False):
        pytest.fail("the CuPy stand-in is installed as cupy; the compile gate needs the real one")
    return cupy, compiler, function, raw


@contextlib.contextmanager
def compiling_for(arch):
    """CuPy's own compile path, pointed at ``arch`` and kept away from the (absent) device."""
    cupy, compiler, function, raw = _real_cupy()
    _need(hasattr(compiler, "_get_arch"), "no cupy.cuda.compiler._get_arch")
    _need(hasattr(getattr(compiler, "_get_arch_for_options_for_nvrtc", None), "__wrapped__"),
          "_get_arch_for_options_for_nvrtc is no longer a memoized function")
    _need(hasattr(compiler, "_compile_using_nvrtc_no_warning"), "no _compile_using_nvrtc_no_warning")
    _need(getattr(compiler, "function", None) is function, "compiler.py no longer calls cupy.cuda.function.Module")
    _need(hasattr(getattr(raw, "_get_raw_module", None), "__wrapped__"), "no memoized cupy._core.raw._get_raw_module")

    class KeptModule(function.Module):
        """Keeps the cubin instead of loading it onto a device."""

        def load(self, cubin):
            self.cubin = cubin

        def _set_mapping(self, mapping):
            self.lowered = mapping

    calls = []
    nvrtc = compiler._compile_using_nvrtc_no_warning

    def spy(source, options=(), arch=None, *args, **kwargs):
        calls.append((source, options, arch))
        return nvrtc(source, options, arch, *args, **kwargs)

    saved = {k: getattr(compiler, k) for k in ("_get_arch", "_get_arch_for_options_for_nvrtc",
                                               "_compile_using_nvrtc_no_warning", "function")}
    saved_env = os.environ.get("CUPY_CACHE_IN_MEMORY")
    compiler._get_arch = lambda: arch
    compiler._get_arch_for_options_for_nvrtc = saved["_get_arch_for_options_for_nvrtc"].__wrapped__
    compiler._compile_using_nvrtc_no_warning = spy
    compiler.function = types.SimpleNamespace(Module=KeptModule, LinkState=function.LinkState)
    os.environ["CUPY_CACHE_IN_MEMORY"] = "1"
    try:
        yield raw, compiler, calls
    finally:
        for k, v in saved.items():
            setattr(compiler, k, v)
        if saved_env is None:
            os.environ.pop("CUPY_CACHE_IN_MEMORY", None)
        else:
            os.environ["CUPY_CACHE_IN_MEMORY"] = saved_env


@pytest.mark.parametrize("arch", ARCHS)
def test_every_kernel_compiles_with_nvrtc_as_cupy_would(arch):
    with compiling_for(arch) as (raw, compiler, calls):
        from tinynet.kernels import cupy_gpu

        module = cupy_gpu.module()  # the very RawModule the backend launches from
        log = io.StringIO()
        try:
            built = raw._get_raw_module.__wrapped__(
                module.code, module.file_path, module.options, module.backend, False,
                module.enable_cooperative_groups, False, module.name_expressions, log,
            )
        except compiler.CompileException as exc:
            pytest.fail(f"NVRTC could not compile tinynet/kernels/cupy_gpu.cu for sm_{arch}:\n{exc}")
    text = log.getvalue()
    assert "warning" not in text.lower(), f"NVRTC warned compiling cupy_gpu.cu for sm_{arch} (warnings are errors):\n{text}"
    source, options, used_arch = calls[-1]
    assert used_arch == arch and source == cupy_gpu.SOURCE.read_text()  # the shipped file, as is, for this GPU
    assert "-ftz=true" in options and any(o.startswith("--std=") for o in options)  # CuPy's own options were added
    assert len(built.cubin) > 0
    assert set(built.lowered) == set(cupy_gpu.NAME_EXPRESSIONS)  # every kernel, float and double
    assert len(cupy_gpu.NAME_EXPRESSIONS) == 2 * len(cupy_gpu.KERNELS)


def test_the_gate_fails_on_a_kernel_that_does_not_compile():
    """A test that cannot fail is a defect: the same path must reject broken CUDA (INFINITY is not in NVRTC)."""
    with compiling_for("90") as (raw, compiler, _):
        import cupy

        bad = cupy.RawModule(code="template <typename T> __global__ void k(T* y) { y[0] = -INFINITY; }",
                             options=("--std=c++17",), name_expressions=("k<float>",))
        with pytest.raises(compiler.CompileException, match="INFINITY"):
            raw._get_raw_module.__wrapped__(bad.code, bad.file_path, bad.options, bad.backend, False,
                                            bad.enable_cooperative_groups, False, bad.name_expressions, io.StringIO())


def test_the_gate_sees_warnings():
    with compiling_for("90") as (raw, _, _):
        import cupy

        noisy = cupy.RawModule(code="template <typename T> __global__ void k(T* y) { int unused = 1; y[0] = 0; }",
                               options=("--std=c++17",), name_expressions=("k<float>",))
        log = io.StringIO()
        raw._get_raw_module.__wrapped__(noisy.code, noisy.file_path, noisy.options, noisy.backend, False,
                                        noisy.enable_cooperative_groups, False, noisy.name_expressions, log)
    assert "warning" in log.getvalue().lower()
