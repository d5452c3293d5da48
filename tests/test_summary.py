"""summary() reproduces Keras's parameter counts for the course models."""

import pytest
from tinynet.models import three_conv_base

from tinynet import models


@pytest.mark.parametrize(
    "name,total,trainable",
    [
        ("cnn_dropout02", 121_930, 121_930),
        ("cnn_dropout05", 121_930, 121_930),
        ("three_conv_cnn", 87_452, 87_452),
        ("deep_bn_cnn", 1_813_050, 1_811_706),
    ],
)
def test_course_model_parameter_counts(name, total, trainable):
    model = models.build(name)
    text = model.summary(print_fn=None)
    assert f"Total params: {total:,}" in text
    assert f"Trainable params: {trainable:,}" in text
    assert f"Non-trainable params: {total - trainable:,}" in text
    assert models.MODELS[name].params == total


def test_three_conv_base_has_55744_params_and_ends_at_64x3x3():
    base = three_conv_base()
    assert sum(base.n_params()) == 55_744
    assert base.output_shape == (64, 3, 3)


def test_every_registered_model_reports_its_own_count():
    for name, info in models.MODELS.items():
        assert sum(models.build(name).n_params()) == info.params, name


def test_summary_lists_layers_with_keras_style_names():
    text = models.build("cnn_dropout02").summary(print_fn=None)
    assert "conv2d_1 (Conv2D)" in text and "(None, 64, 5, 5)" in text and "dense_1 (Dense)" in text


def test_the_zoo_is_tinynet_models_and_claims_no_top_level_name():
    """Installed, models/ is tinynet.models; a checkout that was never installed finds it under the same name."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in str(getattr(f, '__module__', ''))]\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        "from tinynet import models\n"
        "import tinynet.models.simple_cnn\n"
        "print(models.build('cnn_dropout02').name, 'models' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["cnn_dropout02", "False"]


def test_every_package_of_the_library_is_installed():
    """pyproject.toml lists the packages by hand (the zoo maps to tinynet.models): a new one must not be left out."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "tinynet").rglob("__init__.py")}
    assert found | {"tinynet.models"} == listed


def test_tinynet_summary_prints_the_table_of_a_model_a_checkpoint_or_a_folder(tmp_path, capsys):
    """tinynet summary MODEL|CHECKPOINT|FOLDER: the zoo's model, or the architecture a checkpoint holds (any one)."""
    from helpers import tiny_model

    from tinynet.checkpoint import save_checkpoint
    from tinynet.cli import main

    assert main(["summary", "deep_bn_cnn"]) == 0
    table = capsys.readouterr().out
    assert table == models.build("deep_bn_cnn").summary(print_fn=None) + "\n" and "Total params: 1,813,050" in table
    save_checkpoint(tmp_path / "zoo" / "last.safetensors", models.build("deep_bn_cnn", seed=1))
    for target in (tmp_path / "zoo" / "last.safetensors", tmp_path / "zoo"):
        assert main(["summary", str(target)]) == 0
        assert capsys.readouterr().out == table
    save_checkpoint(tmp_path / "own.safetensors", tiny_model())  # not of the zoo, and not Fashion-MNIST's shape
    assert main(["summary", str(tmp_path / "own.safetensors")]) == 0
    assert capsys.readouterr().out == tiny_model().summary(print_fn=None) + "\n"
