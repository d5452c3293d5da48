"""The CuPy stand-in (fake_cupy.py) against real CuPy 14.2.0: it offers nothing CuPy lacks and accepts nothing CuPy
refuses (tests/cupy_api.py holds the contract; cupy_api_14_2.json the signatures it was read from).

Tests that read the installed CuPy need CuPy 14.2.0 (the ``cuda-compile`` extra; no GPU is needed): without it they
skip, and fail in CI, where it is installed. The rest check the stand-in against the committed table, everywhere.
"""

import inspect
import os
import re
import warnings
from pathlib import Path

import cupy_api
import fake_cupy
import numpy as np
import pytest


@pytest.fixture(scope="module")
def real_cupy():
    """Real CuPy 14.2.0, imported without a GPU (its signatures and argument parsing need none)."""
    try:
        with warnings.catch_warnings():  # "multiple CuPy packages are installed" and the like
            warnings.simplefilter("ignore")
            import cupy
    except ImportError as exc:
        reason = f"real CuPy cannot be imported ({type(exc).__name__}: {str(exc).strip().splitlines()[0]})"
    else:
        if getattr(cupy, "IS_STANDIN", False):
            reason = "cupy is the stand-in here, not real CuPy"
        elif cupy.__version__ != cupy_api.CUPY_VERSION:
            reason = f"CuPy {cupy.__version__} is installed, the contract is with {cupy_api.CUPY_VERSION}"
        else:
            return cupy
    if os.environ.get("CI"):  # CI installs it (the cuda-compile extra): its absence there is a failure
        pytest.fail(reason)
    pytest.skip(reason)


# -- the table is real CuPy's ---------------------------------------------------------------------------------------
def test_the_committed_table_is_what_the_installed_cupy_says(real_cupy):
    fresh, committed = cupy_api.build_table(fake_cupy, real_cupy), cupy_api.load_table()
    differ = sorted(p for p in set(fresh["entries"]) | set(committed["entries"])
                    if fresh["entries"].get(p) != committed["entries"].get(p))
    assert not differ, f"run python tests/cupy_api.py --write; these differ: {differ}"
    assert fresh == committed


def test_the_table_records_each_signature_and_where_it_came_from():
    entries = cupy_api.load_table()["entries"]
    kinds = {"POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD", "VAR_POSITIONAL", "KEYWORD_ONLY", "VAR_KEYWORD"}
    for path, entry in entries.items():
        assert entry["source"] in ("inspect", "docstring", "presence"), path
        assert ("params" in entry) == (entry["source"] != "presence"), path
        assert all(kind in kinds and isinstance(has_default, bool) for _, kind, has_default in entry.get("params", ())), path
    # what the stand-in's strictness rests on
    assert entries["ndarray.sum"]["params"] == [[n, "POSITIONAL_OR_KEYWORD", True] for n in ("axis", "dtype", "out", "keepdims")]
    assert entries["cuda.Stream"]["params"] == [[n, "POSITIONAL_OR_KEYWORD", True]
                                                for n in ("null", "non_blocking", "ptds", "priority")]


def test_a_cython_signature_is_read_from_its_docstring():
    sig = cupy_api.parse_doc_signature("RawModule(str code=None, *, tuple options=(), name_expressions=None)\n\nText",
                                       ["RawModule"])
    assert str(sig) == "(code=..., *, options=..., name_expressions=...)"
    sig = cupy_api.parse_doc_signature("_ndarray_base.sum(self, axis=None, dtype=None) -> _ndarray_base", ["sum"])
    assert list(sig.parameters) == ["self", "axis", "dtype"]
    assert str(cupy_api.parse_doc_signature(r"exp(x, /, out=None, \*, casting='same_kind', dtype=None)", [r"\w+"])) == \
        "(x, /, out=..., *, casting=..., dtype=...)"
    assert cupy_api.parse_doc_signature("Returns the sum.", ["sum"]) is None
    assert cupy_api.parse_doc_signature("divmod(x1, x2[, out1, out2], / [, out=(None, None)], *)", ["divmod"]) is None


# -- the stand-in keeps to it ---------------------------------------------------------------------------------------
def test_the_standin_offers_only_what_cupy_14_2_has_and_takes_only_what_it_takes(real_cupy):
    assert cupy_api.check_contract(fake_cupy, cupy_api.build_table(fake_cupy, real_cupy)) == []


def test_the_standin_keeps_to_the_committed_table():
    """The same check against the committed table: it holds where real CuPy is not installed too."""
    assert cupy_api.check_contract(fake_cupy, cupy_api.load_table()) == []


def test_rawkernel_keywords_are_those_cupys_function_call_takes(real_cupy, standin):
    """cupy/_core/raw.pyx ``RawKernel.__call__(grid, block, args, **kwargs)`` hands ``kwargs`` to cupy/cuda/function.pyx
    ``Function.__call__``, whose signature the installed CuPy does not show: its argument parsing is asked instead,
    with a grid of the wrong type so that it stops before launching (no GPU is needed)."""
    Function = real_cupy.cuda.function.Function  # (``cupy`` is the stand-in while ``standin`` is installed)

    def cupy_takes(**kwargs):
        with pytest.raises(TypeError) as exc:
            Function.__new__(Function)(1, (1,), (), **kwargs)
        return "unexpected keyword" not in str(exc.value)

    class HostKernel:  # what cuda_host.py would compile, reduced to being called
        name = "k"

        def __call__(self, grid, block, args, shared_mem):
            pass

    kernel = standin.RawKernel._from_host(HostKernel())
    taken = [k for k in ("shared_mem", "stream", "enable_cooperative_groups", "block_size")
             if _standin_takes(kernel, k)]
    assert taken == ["shared_mem", "stream"]
    assert all(cupy_takes(**{k: None if k == "stream" else 0}) for k in taken)
    assert not cupy_takes(bogus=0) and not _standin_takes(kernel, "bogus")


def _standin_takes(kernel, keyword):
    try:
        kernel((1,), (1,), (), **{keyword: None if keyword == "stream" else 0})
    except TypeError as exc:
        assert "unexpected keyword argument" in str(exc)
        return False
    return True


def test_tinynet_uses_none_of_the_standins_own_names():
    """Names in _NOT_CUPY are the stand-in's (test counters, the classes behind cupy.cuda.*): tinynet, which runs on real
    CuPy too, must not reach them through its CuPy module."""
    own = "|".join(re.escape(n) for n in fake_cupy._NOT_CUPY if "." not in n)
    pattern = re.compile(rf"\b(?:cp|cupy|xp)\.(?:{own})\b")
    root = Path(__file__).parents[1] / "tinynet"
    found = [f"{f.relative_to(root)}:{i}" for f in sorted(root.rglob("*.py"))
             for i, line in enumerate(f.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []


# -- the check can fail ---------------------------------------------------------------------------------------------
def test_a_name_cupy_lacks_is_caught(monkeypatch, real_cupy):
    monkeypatch.setattr(fake_cupy, "ptp_standin_only", lambda a: a, raising=False)
    monkeypatch.setattr(fake_cupy, "__all__", (*fake_cupy.__all__, "ptp_standin_only"))
    monkeypatch.setattr(fake_cupy.ndarray, "resize", lambda self, new_shape: None, raising=False)  # NumPy has it, CuPy not
    problems = cupy_api.check_contract(fake_cupy, cupy_api.build_table(fake_cupy, real_cupy))
    assert problems == ["cupy.ndarray.resize: offered by the stand-in, but CuPy 14.2.0 has no such name",
                        "cupy.ptp_standin_only: offered by the stand-in, but CuPy 14.2.0 has no such name"]


def test_a_name_missing_from_the_table_or_unclassified_is_caught(monkeypatch):
    monkeypatch.setattr(fake_cupy.cuda.Event, "elapsed_ms", 0.0, raising=False)
    monkeypatch.setattr(fake_cupy, "helper", 1, raising=False)
    problems = cupy_api.check_contract(fake_cupy, cupy_api.load_table())
    assert problems == [
        "helper: public in the stand-in but neither CuPy API (__all__) nor the stand-in's own (_NOT_CUPY)",
        "cupy.cuda.Event.elapsed_ms: offered by the stand-in, not in the table (python tests/cupy_api.py --write)"]


def test_a_keyword_or_requirement_cupy_lacks_is_caught(monkeypatch):
    def asnumpy(a, stream=None, *, bogus=None):
        pass

    def get(self, stream):
        pass

    monkeypatch.setattr(fake_cupy, "asnumpy", asnumpy)
    monkeypatch.setattr(fake_cupy.ndarray, "get", get)
    problems = cupy_api.check_contract(fake_cupy, cupy_api.load_table())
    assert sorted(problems) == ["cupy.asnumpy: the stand-in takes keyword 'bogus', which CuPy does not",
                                "cupy.ndarray.get: the stand-in requires 1 positional argument(s) and []; CuPy 0 and []"]


def test_compare_sees_each_way_a_signature_can_take_more_than_cupys():
    def sig(f):
        return inspect.signature(f)

    def cupy(a, axis=None, *, dtype=None):
        pass

    assert cupy_api.compare(sig(lambda a, axis=None, *, dtype=None: 0), sig(cupy)) == []
    assert cupy_api.compare(sig(lambda a, axis=None, out=None: 0), sig(cupy)) == [
        "takes 'out' as positional argument 3; CuPy takes 2", "takes keyword 'out', which CuPy does not"]
    assert cupy_api.compare(sig(lambda a, dim=None: 0), sig(cupy)) == [
        "names positional argument 2 'dim'; CuPy names it 'axis'", "takes keyword 'dim', which CuPy does not"]
    assert cupy_api.compare(sig(lambda a, *rest, **kw: 0), sig(cupy)) == [
        "takes *rest, which CuPy does not", "takes **kw, which CuPy does not"]
    assert cupy_api.compare(sig(lambda a, axis: 0), sig(cupy)) == [
        "requires 2 positional argument(s) and []; CuPy 1 and []"]
    assert cupy_api.compare(sig(lambda a=None: 0), sig(cupy)) == [
        "requires 0 positional argument(s) and [], fewer than CuPy's 1 and []"]


# -- what the stand-in refuses at call time -------------------------------------------------------------------------
def test_keywords_numpy_takes_and_cupy_does_not_are_refused(standin):
    d = standin.asarray(np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match=r"sum\(\) got an unexpected keyword argument 'where'"):
        d.sum(where=d > 1)
    with pytest.raises(TypeError, match=r"sum\(\) got an unexpected keyword argument 'initial'"):
        standin.sum(d, initial=0)
    with pytest.raises(TypeError, match=r"zeros\(\) got an unexpected keyword argument 'like'"):
        standin.zeros(3, like=None)
    with pytest.raises(TypeError, match=r"exp\(\) got an unexpected keyword argument 'where'"):
        np.exp(d, where=d > 1)  # NumPy hands it to cupy.exp, as CuPy's __array_ufunc__ does
    with pytest.raises(TypeError, match=r"sum\(\) too many positional arguments"):
        standin.sum(d, 0, None, None, False, 7)
    with pytest.raises(TypeError, match=r"argmax\(\) takes 2 positional"):  # CuPy's third is dtype, NumPy's out
        standin.argmax(d, 1, None)
    assert float(d.sum(axis=1, keepdims=True).sum()) == 15.0 and int(standin.argmax(d, 1)[0]) == 2


def test_the_same_calls_are_refused_by_real_cupy(real_cupy):
    """Module functions are Python functions in CuPy: their argument checks run without a GPU."""
    with pytest.raises(TypeError, match="like"):
        real_cupy.zeros(3, like=None)
    with pytest.raises(TypeError, match="initial"):
        real_cupy.sum(None, initial=0)


# NumPy ndarray methods that CuPy 14.2.0's ndarray lacks (ptp, in NumPy's list once, CuPy has)
NOT_IN_CUPY = ("resize", "setflags", "getfield", "to_device", "tostring", "ctypes")


def test_ndarray_methods_cupy_lacks_are_absent(standin):
    d = standin.zeros(3)
    for name in NOT_IN_CUPY:
        with pytest.raises(AttributeError, match=f"no attribute '{name}'"):  # what CuPy raises
            getattr(d, name)()
    with pytest.raises(TypeError):  # no __index__ in CuPy either
        [0, 1][standin.asarray(np.int64(1))]


def test_those_methods_are_absent_from_real_cupy_too(real_cupy):
    assert [name for name in NOT_IN_CUPY if hasattr(real_cupy.ndarray, name)] == []
