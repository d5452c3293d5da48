"""tinynet: a small deep-learning engine with hand-written backward passes."""

from . import cpu_threads  # noqa: F401, I001  (first: it sets OpenBLAS's thread timeout before NumPy loads)
from . import layers, losses, optim
from .backend import available_backends, get_backend, use_backend, using_backend
from .loading import load_model
from .gradcheck import GradcheckReport, gradcheck
from .parameter import Parameter
from .sequential import Sequential



def _version() -> str:
    """The version pyproject.toml declares: from the installed package's metadata, or, in a checkout run without
    installing (PYTHONPATH=., as on the GPU machine), from pyproject.toml itself. One source either way."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tinynet")
    except PackageNotFoundError:
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        if pyproject.is_file():
            return tomllib.loads(pyproject.read_text())["project"]["version"]
        return "unknown"


__version__ = _version()


def __getattr__(name):
    """``from tinynet import models`` in a checkout that was never pip-installed.

    The model zoo lives in the repository's top-level models/ folder and installs as tinynet.models
    (pyproject.toml); without an install, this loads that folder under the same name.
    """
    if name == "models":
        import importlib.util
        import sys
        from pathlib import Path

        init = Path(__file__).resolve().parent.parent / "models" / "__init__.py"
        if init.is_file():
            spec = importlib.util.spec_from_file_location("tinynet.models", init, submodule_search_locations=[str(init.parent)])
            module = importlib.util.module_from_spec(spec)
            sys.modules["tinynet.models"] = module
            spec.loader.exec_module(module)
            return module
    raise AttributeError(f"module 'tinynet' has no attribute {name!r}")

__all__ = [
    "Parameter", "Sequential", "gradcheck", "GradcheckReport", "layers", "losses", "optim",
    "use_backend", "get_backend", "using_backend", "available_backends", "load_model",
]
