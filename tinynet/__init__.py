"""tinynet: a small deep-learning engine with hand-written backward passes."""

from . import cpu_threads  # noqa: F401, I001  (first: it sets OpenBLAS's thread timeout before NumPy loads)
from . import layers, losses, optim
from .backend import available_backends, get_backend, use_backend, using_backend
from .gradcheck import GradcheckReport, gradcheck
from .parameter import Parameter
from .sequential import Sequential

__version__ = "0.1.0"

__all__ = [
    "Parameter", "Sequential", "gradcheck", "GradcheckReport", "layers", "losses", "optim",
    "use_backend", "get_backend", "using_backend", "available_backends",
]
