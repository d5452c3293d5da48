"""The ``tinynet`` command line (also ``python -m tinynet``): parser.py reads it, commands.py and train.py run the
commands, main.py ties them together and sets the exit status. Training itself is tinynet.experiment's."""

from .main import main

__all__ = ["main"]
