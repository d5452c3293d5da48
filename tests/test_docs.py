"""The guides in docs/ run as they stand: every Python block of a guide, in order, in a fresh folder, as a reader
copies them; and `tinynet gradcheck FILE.py:NAME` on a reader's own file."""

import re
import textwrap
from pathlib import Path

import pytest

import tinynet

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _blocks(path, language):
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), re.S)


@pytest.fixture
def fresh_registry(monkeypatch):
    monkeypatch.setattr(tinynet.layers, "LAYERS", dict(tinynet.layers.LAYERS))  # the guide registers LeakyReLU


def test_your_own_layer_guide_runs_block_by_block(tmp_path, monkeypatch, fresh_registry, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "guide"}
    blocks = _blocks(DOCS / "your_own_layer.md", "python")
    assert len(blocks) == 5
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"docs/your_own_layer.md, python block {i + 1}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"python block {i + 1} of docs/your_own_layer.md failed: {exc!r}") from exc
    assert "PASS" in capsys.readouterr().out


LAYER_FILE = '''
from tinynet import Sequential
from tinynet.arrays import xp_of
from tinynet.layers import Dense, Flatten, Layer


class LeakyReLU(Layer):
    def __init__(self, alpha=0.1):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, training=False):
        self._check_input(x)
        self.slope = xp_of(x).where(x > 0, x.dtype.type(1), x.dtype.type(self.alpha))
        return x * self.slope

    def backward(self, dy):
        return dy * self.slope{bug}


def my_model():
    return Sequential([Flatten(), Dense(8, seed=0), LeakyReLU(0.2), Dense(3, seed=1)], input_shape=(1, 4, 4), seed=0)


not_a_layer = 42
'''


@pytest.fixture
def layer_file(tmp_path):
    def write(bug=""):
        path = tmp_path / "my_layers.py"
        path.write_text(textwrap.dedent(LAYER_FILE).replace("{bug}", bug))
        return path

    return write


def test_gradcheck_on_a_layer_or_model_of_ones_own_from_its_file(layer_file, capsys):
    from tinynet.cli import main

    path = layer_file()
    assert main(["gradcheck", f"{path}:LeakyReLU", "--input-shape", "6", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"gradient check of {path}:LeakyReLU" in out and "PASS" in out
    assert main(["gradcheck", f"{path}:my_model", "--quiet"]) == 0  # a function making a Sequential: with the loss
    assert "through the loss" in capsys.readouterr().out
    buggy = layer_file(bug=" * 2")
    assert main(["gradcheck", f"{buggy}:LeakyReLU", "--input-shape", "6", "--quiet"]) == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "expect"), [
    (["{path}:Nope", "--input-shape", "6"], "has no 'Nope'; it defines: .*LeakyReLU.*my_model"),
    (["{path}:not_a_layer"], "gives a int, not a tinynet Layer or Sequential"),
    (["{path}:LeakyReLU"], "is a layer: say the shape of one sample with --input-shape"),
    (["{dir}/absent.py:X"], "no such file: .*absent.py"),
    (["{dir}/broken.py:X"], "importing .*broken.py failed: ZeroDivisionError"),
    (["{path}:my_model", "--against", "torch"], "--against torch compares the models of the zoo"),
    (["cnn_dropout3"], "unknown model 'cnn_dropout3'"),
])
def test_gradcheck_refuses_what_it_cannot_check_in_one_line(layer_file, tmp_path, capsys, argv, expect):
    from tinynet.cli import main

    path = layer_file()
    (tmp_path / "broken.py").write_text("1 / 0\n")
    argv = [a.format(path=path, dir=tmp_path) for a in argv]
    assert main(["gradcheck", *argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(expect, err), err
