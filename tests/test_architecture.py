"""The modules of tinynet sit in layers, each importing only from the layers below it (docs/architecture.md).

Import circles grew once because a helper lived where it was first needed; this walks every import of every
module (deferred ones inside functions too) and fails when a module imports upwards, when two modules need each
other, or when a new module was not given a layer.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "tinynet"

# Bottom to top. A module may import from its own layer (no circles: checked below) and from the layers under it.
LAYERS = {
    "leaves": ["arrays", "geometry", "counter_rng", "history", "exceptions", "optional", "parameter", "init",
               "cpu_threads", "atomic_files", "safetensors_format"],
    "backend and checks": ["backend", "checks", "provenance", "images", "plots"],
    "kernels": ["kernels.numpy_ref", "kernels.naive", "kernels.numba_conv", "kernels.numba_pool",
                "kernels.numba_elementwise", "kernels.numba_batchnorm", "kernels.numba_cpu", "kernels.cupy_gpu",
                "kernels", "padding"],
    "layers, losses, optimizers": ["layers.base", "layers.batchnorm", "layers.conv2d", "layers.dense", "layers.dropout",
                                   "layers.flatten", "layers.maxpool2d", "layers.relu", "layers.sigmoid",
                                   "layers.softmax", "layers", "losses", "optim", "inference", "metrics", "data",
                                   "cuda_graph"],
    "the model and its files": ["checkpoint_meta", "checkpoint", "sequential", "loading", "callbacks", "gradcheck",
                                "inspection", "interop", "interop.onnx", "interop.torch"],
    "training": ["train", "report", "testing", "errors"],
    "application": ["experiment", "cli.parser", "cli.commands", "cli.gradcheck", "cli.train", "cli.main", "cli", "__main__",
                    ""],
}
LAYER_OF = {module: i for i, modules in enumerate(LAYERS.values()) for module in modules}


def _name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in ROOT.rglob("*.py")}


def _imports(name):
    """The tinynet modules ``name`` imports (a package counts as importing its submodules, not the reverse)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name.removeprefix("tinynet").lstrip(".") for a in node.names if a.name.startswith("tinynet")]
        elif isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("tinynet")):
            base = (node.module or "").removeprefix("tinynet").lstrip(".") if not node.level else ".".join(
                [p for p in (package.split(".")[: len(package.split(".")) - (node.level - 1)] if package else [])
                 + ([node.module] if node.module else []) if p])
            targets = [base] + [f"{base}.{a.name}".lstrip(".") for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            inside = t == "" or name.startswith(t + ".")  # a submodule reaching its own package (tinynet itself): fine
            if t in MODULES and t != name and not inside:
                found.add(t)
    return found


GRAPH = {name: _imports(name) for name in MODULES}


def test_every_module_has_a_layer():
    missing = sorted(set(MODULES) - set(LAYER_OF))
    assert not missing, f"give these modules a layer in tests/test_architecture.py and docs/architecture.md: {missing}"
    gone = sorted(set(LAYER_OF) - set(MODULES))
    assert not gone, f"these modules no longer exist: {gone}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_from_a_layer_above_its_own(name):
    upward = sorted(t for t in GRAPH[name] if LAYER_OF.get(t, -1) > LAYER_OF.get(name, -1))
    assert not upward, f"tinynet.{name} ({list(LAYERS)[LAYER_OF[name]]}) imports from above: {upward}"


def test_leaves_import_nothing_from_tinynet():
    for name in LAYERS["leaves"]:
        assert not GRAPH[name], f"tinynet.{name} is a leaf but imports {sorted(GRAPH[name])}"


def test_no_two_modules_need_each_other():
    state = {}

    def visit(name, path):
        state[name] = "open"
        for t in sorted(GRAPH[name]):
            if state.get(t) == "open":
                raise AssertionError("import circle: " + " -> ".join([*path[path.index(t):], t]))
            if t not in state:
                visit(t, [*path, t])
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize(("low", "high"), [
    ("checkpoint", "sequential"), ("checkpoint", "train"), ("checkpoint", "callbacks"), ("checkpoint", "loading"),
    ("checkpoint_meta", "sequential"), ("safetensors_format", "checkpoint"), ("sequential", "train"),
    ("backend", "kernels"), ("kernels.numpy_ref", "backend"), ("layers.base", "sequential"),
])
def test_the_arrows_the_redesign_removed_stay_removed(low, high):
    reach, todo = set(), [low]
    while todo:
        for t in GRAPH[todo.pop()]:
            if t not in reach:
                reach.add(t)
                todo.append(t)
    assert high not in reach, f"tinynet.{low} reaches tinynet.{high}"


def test_the_walker_sees_deferred_and_relative_imports():
    """A test of the test: imports inside functions and relative ones at every depth are found."""
    assert "kernels.numba_cpu" in GRAPH["kernels"]  # `from . import numba_cpu as module`, inside implementation()
    assert "kernels.numpy_ref" in GRAPH["kernels.numba_cpu"]  # `import tinynet.kernels.numpy_ref as numpy_ref`
    assert "exceptions" in GRAPH["layers.conv2d"]  # `from ..exceptions import ...`
    assert "models" not in GRAPH[""]  # tinynet.models lives in models/, outside this package


def test_docs_architecture_lists_the_same_layers():
    """docs/architecture.md's table is this file's LAYERS, row by row, so the picture a reader sees is the code's."""
    text = (ROOT.parent / "docs" / "architecture.md").read_text()
    rows = [line.split("|")[1:3] for line in text.splitlines() if line.startswith("| ") and "`" in line.split("|")[2]]
    rows = [r for r in rows if not r[0].strip().startswith("layer (")]  # the header
    documented = {}
    for layer, modules in rows:
        names = [m.strip("` ") for m in modules.split(",")]
        documented[layer.strip()] = ["" if n.startswith("tinynet") else n for n in (n.split()[0] for n in names)]
    assert documented == LAYERS
