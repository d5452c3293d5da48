"""The API contract between the CuPy stand-in (fake_cupy.py) and real CuPy 14.2.0.

The stand-in must never accept what CuPy refuses. For every name it offers, ``cupy_api_14_2.json`` (beside this
file, committed) holds real CuPy 14.2.0's parameter list, read from the installed CuPy by this module:

    python tests/cupy_api.py --write    # regenerate the table from the installed CuPy 14.2.0
    python tests/cupy_api.py            # regenerate in memory, say what differs and what breaks the contract

Each entry records where its signature came from: ``inspect`` (``inspect.signature`` reads it), ``docstring``
(a Cython function's first docstring line, embedded by Cython's ``embedsignature``, or the one CuPy writes for its
ufuncs with ``_ufunc_doc_signature_formatter``), or ``presence`` (unreadable: a property, a constant, or a
``*args, **kwargs`` wrapper; only the name's existence is checked). The stand-in binds each call of a function it
forwards to NumPy to the table's signature (:func:`bind`), so it needs no CuPy to be strict;
tests/test_cupy_contract.py checks that the table is what the installed CuPy says and that the stand-in keeps to it.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import sys
import types
from pathlib import Path

CUPY_VERSION = "14.2.0"
TABLE = Path(__file__).with_name("cupy_api_14_2.json")
_P = inspect.Parameter
_KINDS = {kind.name: kind for kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD, _P.VAR_POSITIONAL, _P.KEYWORD_ONLY,
                                       _P.VAR_KEYWORD)}
_POSITIONAL = (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)
_BY_KEYWORD = (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY)
# class-body names that are Python's machinery, not API a caller uses
_MACHINERY = {"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__slots__", "__init__",
              "__firstlineno__", "__static_attributes__", "__annotations__"}


# -- reading one signature --------------------------------------------------------------------------------------------
def _split_top_level(text):
    """Split a parameter list at the commas that are not inside brackets or quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_doc_signature(doc, names):
    """The signature on a docstring's first line (``[Class.]name(params) -> type``, ``name`` matching one of the
    regular expressions ``names``), or None when there is none.

    Cython writes C types before names (``str code=None``, ``size_t size``): the name is the last word before ``=``.
    An optional group (``[, out1, out2]``, CuPy's multi-output ufuncs) is not a signature ``inspect`` can hold: None.
    """
    first = (doc or "").lstrip().split("\n", 1)[0].replace("\\*", "*")
    match = re.fullmatch(rf"(?:[\w.]+\.)?(?:{'|'.join(names)})\((.*)\)(?:\s*->.*)?", first.strip())
    if match is None or "[" in re.sub(r"=\s*[^,]*", "", match.group(1)):
        return None
    params, kind = [], _P.POSITIONAL_OR_KEYWORD
    for part in _split_top_level(match.group(1)):
        if part == "/":
            params = [p.replace(kind=_P.POSITIONAL_ONLY) for p in params]
        elif part == "*":
            kind = _P.KEYWORD_ONLY
        elif part.startswith("**"):
            params.append(_P(part[2:].split()[-1], _P.VAR_KEYWORD))
        elif part.startswith("*"):
            params.append(_P(part[1:].split()[-1], _P.VAR_POSITIONAL))
            kind = _P.KEYWORD_ONLY
        else:
            left, eq, _ = part.partition("=")
            params.append(_P(left.split(":")[0].split()[-1], kind, default=_DEFAULT if eq else _P.empty))
    return inspect.Signature(params)


class _Default:
    """The default of a parameter read from the table: only *that* there is one is recorded, not its value."""

    def __repr__(self):
        return "..."


_DEFAULT = _Default()


def hides_parameters(sig):
    """A ``*args, **kwargs`` wrapper (private keywords aside) says nothing about what it takes."""
    public = [p for p in sig.parameters.values() if not p.name.startswith("_")]
    return bool(public) and all(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in public)


def read_signature(obj, name, method):
    """(signature, source) of a callable; ``method``: drop the first parameter (self). (None, "presence") if unreadable."""
    try:
        sig, source = inspect.signature(obj), "inspect"
    except (TypeError, ValueError):
        # CuPy writes a ufunc's docstring under one of its names (cupy.abs's says "absolute(", cupy.power's "pow(")
        names = [r"\w+"] if type(obj).__name__ == "ufunc" else [re.escape(name)]
        sig, source = parse_doc_signature(getattr(obj, "__doc__", None), names), "docstring"
    if sig is None or hides_parameters(sig):
        return None, "presence"
    params = list(sig.parameters.values())
    if method and params and params[0].kind in _POSITIONAL:
        params = params[1:]
    return inspect.Signature([p.replace(annotation=_P.empty) for p in params]), source


def kind_of(obj, parent):
    """What a name is: a module, class, function, method (of a class), or attribute (property, constant...)."""
    if isinstance(obj, (types.ModuleType, types.SimpleNamespace)):
        return "module"
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "method" if inspect.isclass(parent) else "function"
    return "attribute"


def entry_of(obj, name, parent):
    """The table entry for ``obj``, reached as attribute ``name`` of ``parent``."""
    kind = kind_of(obj, parent)
    if kind in ("module", "attribute"):
        return {"kind": kind, "source": "presence"}
    sig, source = read_signature(obj, name, method=kind == "method")
    if sig is None:
        return {"kind": kind, "source": "presence"}
    params = [[p.name, p.kind.name, p.default is not _P.empty] for p in sig.parameters.values()]
    return {"kind": kind, "source": source, "params": params}


def signature_of(entry):
    """The entry's recorded signature as an ``inspect.Signature`` (None: presence only, nothing to bind)."""
    if "params" not in entry:
        return None
    return inspect.Signature([_P(name, _KINDS[kind], default=_DEFAULT if has_default else _P.empty)
                              for name, kind, has_default in entry["params"]])


# -- what the stand-in offers -----------------------------------------------------------------------------------------
def _samples(standin):
    """Instances of the stand-in's classes that keep attributes in a ``__dict__`` (set in ``__init__``, so not on the
    class): their public attributes are offered too. Classes with ``__slots__`` need none."""
    return {"cuda.Stream": standin.cuda.Stream(non_blocking=True), "cuda.Event": standin.cuda.Event(),
            "cuda.Graph": standin.cuda.Graph._from_steps([]), "cuda.MemoryPool": standin.cuda.MemoryPool()}


def _members(cls, path, samples):
    """A stand-in class's own names: public ones and dunders (operators), slots included, and a sample's attributes."""
    names = {n for n in vars(cls) if n not in _MACHINERY and (not n.startswith("_") or n.endswith("__"))}
    names |= {n for n in getattr(cls, "__slots__", ()) if not n.startswith("_")}
    if path in samples:
        names |= {n for n in vars(samples[path]) if not n.startswith("_")}
    elif "__dict__" in dir(cls) and not issubclass(cls, BaseException):
        raise TypeError(f"{path}: give the class __slots__ or a sample in cupy_api._samples, so its attributes are seen")
    own, sample = vars(cls), samples.get(path, cls)
    return {n: own[n] if n in own else getattr(sample, n) for n in sorted(names)}


def offered_with_parents(standin):
    """Every name the stand-in offers as CuPy's, keyed by its path under ``cupy`` ("sum", "ndarray.sum",
    "cuda.Stream.synchronize"), with the stand-in's object and what holds it; its own extras (``_NOT_CUPY``) left out."""
    out, samples = {}, _samples(standin)

    def collect(path, obj, parent):
        if path in standin._NOT_CUPY:
            return
        out[path] = obj, parent
        if isinstance(obj, types.SimpleNamespace):
            for name, value in vars(obj).items():
                if not name.startswith("_"):
                    collect(f"{path}.{name}", value, obj)
        elif inspect.isclass(obj) and obj.__module__ in (standin.__name__, "cupy"):
            for name, value in _members(obj, path, samples).items():
                collect(f"{path}.{name}", value, obj)

    for name in standin.__all__:
        collect(name, getattr(standin, name), standin)
    return out


def offered(standin):
    return {path: obj for path, (obj, _) in offered_with_parents(standin).items()}


def unclassified(standin):
    """The stand-in's public module attributes that are neither CuPy API (``__all__``) nor its own (``_NOT_CUPY``);
    imports (modules, and classes or functions defined elsewhere) aside."""
    def imported(value):
        return isinstance(value, types.ModuleType) or getattr(value, "__module__", standin.__name__) not in (
            standin.__name__, "cupy")

    return sorted(name for name, value in vars(standin).items()
                  if not name.startswith("_") and name not in standin.__all__ and name not in standin._NOT_CUPY
                  and not imported(value))


# -- the table ----------------------------------------------------------------------------------------------------------
_ABSENT = object()


def _resolve(cupy, path):
    """(object, its parent) in real CuPy, or (_ABSENT, None) when CuPy has no such name."""
    parent, obj = None, cupy
    for name in path.split("."):
        parent, obj = obj, getattr(obj, name, _ABSENT)
        if obj is _ABSENT:
            return _ABSENT, None
    return obj, parent


def build_table(standin, cupy):
    """The table for what ``standin`` offers, read from ``cupy`` (real CuPy, whose version must be CUPY_VERSION)."""
    if cupy.__version__ != CUPY_VERSION:
        raise RuntimeError(f"the table is CuPy {CUPY_VERSION}'s, and this is CuPy {cupy.__version__}")
    entries = {}
    for path in sorted(offered(standin)):
        obj, parent = _resolve(cupy, path)
        entries[path] = {"kind": "absent"} if obj is _ABSENT else entry_of(obj, path.rsplit(".", 1)[-1], parent)
    return {"cupy": CUPY_VERSION, "generated_by": "python tests/cupy_api.py --write", "entries": entries}


def dumps(table):
    """The table as committed: one entry a line, so a change shows as one line in a diff."""
    head = "".join(f"  {json.dumps(k)}: {json.dumps(v)},\n" for k, v in table.items() if k != "entries")
    lines = ",\n".join(f"    {json.dumps(path)}: {json.dumps(entry)}" for path, entry in table["entries"].items())
    return "{\n" + head + '  "entries": {\n' + lines + "\n  }\n}\n"


@functools.cache
def load_table():
    return json.loads(TABLE.read_text())


# NumPy's and CuPy's names for the same parameter
_SYNONYMS = {("arrays", "tup"), ("shape", "newshape")}


@functools.cache
def _agreeing_positions(path, target, is_method):
    """How many leading positional arguments mean the same to NumPy's ``target`` and to CuPy's ``cupy.<path>``
    (None: all that CuPy takes). ``cupy.argmax(a, axis, dtype, out)`` is ``numpy.argmax(a, axis, out)``: a forward
    must refuse a third positional argument, which NumPy would take for ``out``."""
    theirs = _signature(path)
    mine, _ = read_signature(target, path.rsplit(".", 1)[-1], method=is_method)
    if theirs is None or mine is None:  # one side is unreadable: positions are trusted
        return None
    pairs = zip([p for p in mine.parameters.values() if p.kind in _POSITIONAL],
                [p for p in theirs.parameters.values() if p.kind in _POSITIONAL], strict=False)
    for i, (ours, cupys) in enumerate(pairs):
        if _P.POSITIONAL_ONLY not in (ours.kind, cupys.kind) and ours.name != cupys.name and \
                (ours.name, cupys.name) not in _SYNONYMS:
            return i
    return None


@functools.cache
def _signature(path):
    entry = load_table()["entries"].get(path)
    if entry is None or entry["kind"] == "absent":
        raise TypeError(f"cupy.{path}: no CuPy {CUPY_VERSION} signature in {TABLE.name} (CuPy may lack it; if the "
                        "stand-in should offer it, run python tests/cupy_api.py --write)")
    return signature_of(entry)


def bind(path, args, kwargs, target=None, is_method=False):
    """Refuse, as CuPy would, a call of ``cupy.<path>`` that CuPy 14.2.0's signature does not take (TypeError).

    ``args`` leave out ``self`` for methods. ``target``: the NumPy function the call goes on to, whose positional
    parameters must mean what CuPy's do. A presence-only entry (a ``*args, **kwargs`` wrapper such as einsum, a
    binary operator) cannot be bound: only the name is checked, when the table is made.
    """
    sig, name = _signature(path), path.rsplit(".", 1)[-1]
    if sig is None:
        return
    try:
        sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{name}() {exc} (CuPy {CUPY_VERSION}: cupy.{path}{sig})") from None
    agree = None if target is None else _agreeing_positions(path, target, is_method)
    if agree is not None and len(args) > agree:
        raise TypeError(f"{name}() takes {agree} positional argument(s) in the CuPy stand-in: NumPy, which it forwards "
                        f"to, gives argument {agree + 1} another meaning than CuPy; pass it by keyword")


# -- the contract -------------------------------------------------------------------------------------------------------
def _required(sig):
    """How many leading positional parameters a call must give, and the keyword-only ones it must name."""
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in _POSITIONAL]
    count = next((i for i, p in enumerate(positional) if p.default is not _P.empty), len(positional))
    if any(p.kind is _P.VAR_POSITIONAL for p in params):  # what *args must hold is the function's business
        count = None
    return count, {p.name for p in params if p.kind is _P.KEYWORD_ONLY and p.default is _P.empty}


def compare(mine, theirs, forwarded=False):
    """What the stand-in's signature ``mine`` takes that CuPy's ``theirs`` refuses, and what the two require differently.

    ``forwarded``: ``mine`` is the NumPy function the stand-in forwards to after binding the call to CuPy's
    signature, and to the positions where both mean the same (:func:`bind`), so the call was already refused if CuPy
    would refuse it: only what NumPy requires beyond CuPy can still differ.
    """
    problems, ours, cupys = [], list(mine.parameters.values()), list(theirs.parameters.values())
    our_pos, cupy_pos = [p for p in ours if p.kind in _POSITIONAL], [p for p in cupys if p.kind in _POSITIONAL]
    cupy_kinds = {p.kind for p in cupys}
    if not forwarded:
        for i, p in enumerate(our_pos):
            if i >= len(cupy_pos) and _P.VAR_POSITIONAL not in cupy_kinds:
                problems.append(f"takes {p.name!r} as positional argument {i + 1}; CuPy takes {len(cupy_pos)}")
            elif i < len(cupy_pos) and p.kind is cupy_pos[i].kind is _P.POSITIONAL_OR_KEYWORD and p.name != cupy_pos[i].name:
                problems.append(f"names positional argument {i + 1} {p.name!r}; CuPy names it {cupy_pos[i].name!r}")
        cupy_keywords = {p.name for p in cupys if p.kind in _BY_KEYWORD}
        for p in ours:
            if p.kind in _BY_KEYWORD and p.name not in cupy_keywords and _P.VAR_KEYWORD not in cupy_kinds:
                problems.append(f"takes keyword {p.name!r}, which CuPy does not")
            if p.kind in (_P.VAR_POSITIONAL, _P.VAR_KEYWORD) and p.kind not in cupy_kinds:
                problems.append(f"takes {'*' if p.kind is _P.VAR_POSITIONAL else '**'}{p.name}, which CuPy does not")
    (our_count, our_kw), (cupy_count, cupy_kw) = _required(mine), _required(theirs)
    if None in (our_count, cupy_count):
        our_count = cupy_count = 0
    if our_count > cupy_count or our_kw - cupy_kw:
        problems.append(f"requires {our_count} positional argument(s) and {sorted(our_kw)}; CuPy {cupy_count} and "
                        f"{sorted(cupy_kw)}")
    elif not forwarded and (our_count < cupy_count or cupy_kw - our_kw):
        problems.append(f"requires {our_count} positional argument(s) and {sorted(our_kw)}, fewer than CuPy's "
                        f"{cupy_count} and {sorted(cupy_kw)}")
    return problems


def _check_one(path, obj, parent, entry):
    """The problems of one offered name against its table entry (which CuPy has)."""
    def category(kind):  # a function may stand in for a class and the other way round: both are called
        return "callable" if kind in ("function", "class", "method") else kind

    ours = kind_of(obj, parent)
    if category(ours) != category(entry["kind"]):
        return [f"cupy.{path}: the stand-in offers a {ours}, CuPy has a {entry['kind']}"]
    theirs = signature_of(entry)
    if theirs is None or category(ours) != "callable":
        return []
    forwards_to = getattr(obj, "_cupy_forwards_to", None)
    target = obj if forwards_to is None else forwards_to
    mine, _ = read_signature(target, getattr(target, "__name__", path), method=ours == "method")
    # An unreadable signature is fine behind a binding, and for an exception, which tinynet catches and the stand-in
    # raises with a message (CuPy's OutOfMemoryError takes sizes); any other function hiding its parameters is not.
    if mine is None:
        if forwards_to is not None or (inspect.isclass(obj) and issubclass(obj, BaseException)):
            return []
        return [f"cupy.{path}: the stand-in's signature cannot be read"]
    return [f"cupy.{path}: the stand-in {p}" for p in compare(mine, theirs, forwarded=forwards_to is not None)]


def check_contract(standin, table):
    """Every way ``standin`` breaks the contract with the CuPy recorded in ``table`` (an empty list: none)."""
    problems = [f"{name}: public in the stand-in but neither CuPy API (__all__) nor the stand-in's own (_NOT_CUPY)"
                for name in unclassified(standin)]
    entries, mine = table["entries"], offered_with_parents(standin)
    for path, (obj, parent) in mine.items():
        entry = entries.get(path)
        if entry is None:
            problems.append(f"cupy.{path}: offered by the stand-in, not in the table (python tests/cupy_api.py --write)")
        elif entry["kind"] == "absent":
            problems.append(f"cupy.{path}: offered by the stand-in, but CuPy {CUPY_VERSION} has no such name")
        else:
            problems += _check_one(path, obj, parent, entry)
    problems += [f"cupy.{path}: in the table, no longer offered by the stand-in" for path in sorted(set(entries) - set(mine))]
    return problems


def main(argv):
    sys.path.insert(0, str(Path(__file__).parent))
    import cupy
    import fake_cupy

    table, problems = build_table(fake_cupy, cupy), []
    if "--write" in argv:
        TABLE.write_text(dumps(table))
        print(f"wrote {TABLE} ({len(table['entries'])} entries)")
    elif table != json.loads(TABLE.read_text()):
        problems.append(f"{TABLE.name} differs from what the installed CuPy says: run python tests/cupy_api.py --write")
    problems += check_contract(fake_cupy, table)
    print("\n".join(problems) or "the stand-in keeps to the contract")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
