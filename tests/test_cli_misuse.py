"""The command line under misuse: one clear line and a non-zero exit for every deliberate error, never a traceback."""

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

from tinynet import experiment
from tinynet.cli import commands, main
from tinynet.cli.parser import build_parser
from tinynet.cli.train import cmd_train

cli_main = importlib.import_module("tinynet.cli.main")  # the module: the package's name main is its function

TINY_TRAIN = ["--limit-train", "256", "--validation", "0", "--limit-test", "10", "--no-plots", "--quiet"]


def run_cli(*argv, **kw):
    """``python -m tinynet ARGV`` in a fresh process, from the repository root."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "tinynet", *argv], text=True, **kw)


def one_error_line(err):
    """The single stderr line of a failed command (asserting there is exactly one and no traceback)."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinynet: error: "), err
    return lines[0]


# -- 1. every deliberate error type: one line, exit 2 ----------------------------------------------------------------
def test_divergence_is_one_line_not_a_traceback(fashion, tmp_path, capsys):
    assert main(["train", "--lr", "1e6", *TINY_TRAIN, "--out", str(tmp_path / "run")]) == 2
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert "training diverged" in line and "epoch 1" in line and "learning rate" in line
    assert not (tmp_path / "run" / "best.safetensors").exists()  # no checkpoint of the broken weights


def test_divergence_from_a_subprocess(fashion, tmp_path):
    r = run_cli("train", "--lr", "1e6", *TINY_TRAIN, "--out", str(tmp_path / "run"))
    assert r.returncode == 2
    assert "training diverged" in one_error_line(r.stderr)  # NumPy's overflow warnings are not shown either


def test_the_deliberate_error_types_are_collected_in_one_place():
    from tinynet.backend import BackendUnavailable
    from tinynet.callbacks import DivergenceError
    from tinynet.checkpoint import CheckpointError
    from tinynet.data import DataError
    from tinynet.errors import EXPECTED

    for t in (BackendUnavailable, DivergenceError, CheckpointError, DataError, MemoryError):
        assert issubclass(t, EXPECTED), t
    assert not issubclass(KeyError, EXPECTED) and not issubclass(AssertionError, EXPECTED)  # bugs keep a traceback


def _raiser(exc):
    def cmd(args):
        raise exc

    return cmd


def _errors():
    import fake_cupy

    from tinynet.backend import BackendUnavailable
    from tinynet.callbacks import DivergenceError
    from tinynet.checkpoint import CheckpointError
    from tinynet.data import DataError

    return {
        "divergence": (DivergenceError("training diverged: loss became nan"),
                       "tinynet: error: training diverged: loss became nan"),
        "checkpoint": (CheckpointError("c.safetensors: no such checkpoint file"), "c.safetensors: no such checkpoint"),
        "data": (DataError("/d: missing t10k-images-idx3-ubyte.gz"), "/d: missing t10k-images-idx3-ubyte.gz"),
        "backend": (BackendUnavailable("backend 'x' is not usable here"), "backend 'x' is not usable here"),
        "numpy-oom": (MemoryError("Unable to allocate 4.66 GiB"), "error: out of memory: Unable to allocate 4.66 GiB"),
        "cupy-oom": (fake_cupy.OutOfMemoryError("Out of memory allocating 512 bytes"), "Out of memory allocating 512"),
        "bare-oom": (MemoryError(), "tinynet: error: out of memory"),
        "file": (FileNotFoundError(2, "No such file or directory", "x.png"), "No such file or directory: 'x.png'"),
    }


@pytest.mark.parametrize("kind", list(_errors()))
def test_each_error_type_is_one_line_and_status_2(monkeypatch, capsys, kind):
    exc, expect = _errors()[kind]
    monkeypatch.setattr(cli_main, "cmd_models", _raiser(exc))
    assert main(["models"]) == 2
    assert expect in one_error_line(capsys.readouterr().err)


def test_a_bug_keeps_its_traceback(monkeypatch):
    monkeypatch.setattr(cli_main, "cmd_models", _raiser(KeyError("bug")))
    with pytest.raises(KeyError):
        main(["models"])


def test_ctrl_c_is_one_line_and_status_130(monkeypatch, capsys):
    monkeypatch.setattr(cli_main, "cmd_models", _raiser(KeyboardInterrupt()))
    assert main(["models"]) == 130
    assert capsys.readouterr().err == "tinynet: interrupted\n"


def test_ctrl_c_in_train_says_how_to_go_on(monkeypatch, tmp_path, capsys):
    def interrupted_after_an_epoch(args):
        (tmp_path / "new" / "last.safetensors").write_bytes(b"")  # what an epoch's end writes
        raise KeyboardInterrupt

    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "last.safetensors").write_bytes(b"")
    os.utime(tmp_path / "old" / "last.safetensors", (0, 0))  # an older run's checkpoint in the folder
    monkeypatch.setattr(cli_main, "cmd_train", _raiser(KeyboardInterrupt()))
    assert main(["train", "--out", str(tmp_path / "old")]) == 130
    assert "no checkpoint to resume" in capsys.readouterr().err
    monkeypatch.setattr(cli_main, "cmd_train", interrupted_after_an_epoch)
    (tmp_path / "new").mkdir()
    assert main(["train", "--out", str(tmp_path / "new")]) == 130
    err = capsys.readouterr().err
    assert err == f"tinynet: interrupted; to go on from its last finished epoch: tinynet train --resume " \
                  f"{tmp_path / 'new' / 'last.safetensors'}\n"


def test_a_training_cut_short_by_a_closed_pipe_is_not_a_success(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli_main, "cmd_train", _raiser(BrokenPipeError()))
    monkeypatch.setattr(cli_main, "_stdout_to_devnull", lambda: None)  # pytest's captured stdout has no descriptor
    assert main(["train", "--out", str(tmp_path)]) == 141
    assert capsys.readouterr().err.startswith("tinynet: stopped: the output pipe closed before training ended")
    monkeypatch.setattr(cli_main, "cmd_models", _raiser(BrokenPipeError()))
    assert main(["models"]) == 0  # a listing cut short by | head is what the reader asked for


def test_missing_data_is_one_line(tmp_path, capsys):
    assert main(["data", "--data", str(tmp_path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(tmp_path) in line and "missing" in line and "train-images-idx3-ubyte.gz" in line


def test_out_of_memory_evaluation_is_one_line(fashion, tmp_path, monkeypatch, capsys):
    """Evaluation that runs out of memory even at batch size 1 (train.predict_logits halves down to it)."""
    from tinynet import models
    from tinynet.checkpoint import save_checkpoint
    from tinynet.sequential import Sequential

    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(ckpt, models.build("cnn_dropout02", seed=0))

    def no_memory(self, x, training=False):
        raise MemoryError(f"Unable to allocate {len(x) * 4} MiB")

    monkeypatch.setattr(Sequential, "forward", no_memory)
    assert main(["evaluate", str(ckpt)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "out of memory evaluating even one sample on" in line


# -- 2. argument problems are refused before any data is loaded or any training starts -----------------------------


def test_out_naming_an_existing_file_is_refused_up_front(tmp_path, no_work, capsys):
    f = tmp_path / "report.txt"
    f.write_text("keep me")
    assert main(["train", "--out", str(f)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(f) in line and "existing file" in line and "--out" in line
    assert f.read_text() == "keep me"
    assert main(["train", "--out", str(f / "sub")]) == 2  # a file where a parent folder should be
    assert f"{f} is a file" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["--epochs", "0"], "argument --epochs: must be a positive integer, got 0"),
        (["--epochs", "two"], "argument --epochs: expected an integer, got 'two'"),
        (["--batch-size", "-32"], "argument --batch-size: must be a positive integer, got -32"),
        (["--lr", "0"], "argument --lr: must be a positive finite number, got 0"),
        (["--lr=-1e-3"], "argument --lr: must be a positive finite number, got -1e-3"),
        (["--lr", "nan"], "argument --lr: must be a positive finite number, got nan"),
        (["--limit-train", "0"], "argument --limit-train: must be a positive integer, got 0"),
        (["--limit-test", "-5"], "argument --limit-test: must be a positive integer, got -5"),
        (["--limit-val", "0"], "argument --limit-val: must be a positive integer, got 0"),
        (["--validation", "-1"], "argument --validation: must be an integer >= 0, got -1"),
        (["--seed", "-1"], "argument --seed: must be an integer >= 0, got -1"),
        (["--patience", "-1"], "argument --patience: must be an integer >= 0, got -1"),
        (["--lr-decay-steps", "0"], "argument --lr-decay-steps: must be a positive finite number, got 0"),
        (["--monitor", "val_acc"], "argument --monitor: invalid choice: 'val_acc'"),
        (["--reduce-lr-on-plateau", "-1"], "argument --reduce-lr-on-plateau: must be an integer >= 0, got -1"),
        (["--progress", "dots"], "argument --progress: invalid choice: 'dots'"),
        (["--label-smoothing", "1"], "argument --label-smoothing: must be in [0, 1), got 1"),
        (["--label-smoothing", "x"], "argument --label-smoothing: expected a number, got 'x'"),
    ],
)
def test_bad_numbers_and_choices_are_one_line_at_parse_time(no_work, capsys, argv, expect):
    with pytest.raises(SystemExit) as e:
        main(["train", *argv])
    assert e.value.code == 2
    line = one_error_line(capsys.readouterr().err)
    assert expect in line and "tinynet train --help" in line


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["--model", "resnet"], "unknown model 'resnet'; choose one of: cnn_dropout02"),
        (["--monitor", "val_loss", "--validation", "0"], "--monitor val_loss needs validation images"),
        (["--resume", "no/such.safetensors"], "--resume no/such.safetensors: no such checkpoint file"),
        (["--cosine", "--lr-decay-steps", "10"], "--cosine and --lr-decay-steps are each a learning-rate schedule"),
        (["--reduce-lr-on-plateau", "2", "--cosine"], "--cosine and --reduce-lr-on-plateau are each a learning-rate"),
        (["--limit-val", "10", "--validation", "0"], "--limit-val needs validation images, but --validation is 0"),
    ],
)
def test_inconsistent_arguments_are_refused_up_front(tmp_path, no_work, capsys, argv, expect):
    assert main(["train", *argv, "--out", str(tmp_path / "run")]) == 2
    assert expect in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def resumable(fashion, tmp_path_factory):
    """A one-epoch cnn_dropout05 run (seed 1, lr 0.01) to resume."""
    out = tmp_path_factory.mktemp("resumable")
    assert main(["train", "--model", "cnn_dropout05", "--epochs", "1", "--limit-train", "100", "--limit-test", "50",
                 "--lr", "0.01", "--seed", "1", "--backend", "numpy", "--no-plots", "--quiet", "--out", str(out)]) == 0
    return out / "last.safetensors"


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["--model", "cnn_dropout02"], "holds cnn_dropout05, not cnn_dropout02: give one or the other"),
        (["--seeds", "0,1"], "--resume continues one run; --seeds trains several from the start"),
        (["--seed", "5"], "continues a run trained with other options: --seed 5 (the checkpoint's run: --seed 1)"),
        (["--lr", "0.1", "--augment"], "--lr 0.1 (the checkpoint's run: --lr 0.01); --augment (the checkpoint's "
                                       "run: no --augment)"),
        (["--limit-train", "50"], "--limit-train 50 (the checkpoint's run: --limit-train 100)"),
    ],
)
def test_resume_refuses_options_that_would_continue_another_run(resumable, no_work, capsys, argv, expect):
    before = sorted(p.name for p in resumable.parent.iterdir())
    assert main(["train", "--resume", str(resumable), *argv]) == 2
    assert expect in one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in resumable.parent.iterdir()) == before


def test_resume_refuses_a_checkpoint_without_optimizer_state(tmp_path, no_work, capsys):
    from tinynet import models

    path = models.build("cnn_dropout02", seed=0).save(tmp_path / "weights.safetensors")
    assert main(["train", "--resume", str(path)]) == 2
    assert "holds no optimizer state" in one_error_line(capsys.readouterr().err)


def test_validation_larger_than_the_data_is_refused_before_training(fashion, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("tinynet.train.fit", lambda *a, **k: pytest.fail("training started"))
    assert main(["train", "--validation", "60000", "--out", str(tmp_path / "run")]) == 2
    assert "--validation 60000 leaves no training images (there are 60,000)" in one_error_line(capsys.readouterr().err)


def test_predict_index_below_zero_is_refused(capsys):
    with pytest.raises(SystemExit) as e:
        main(["predict", "model.safetensors", "--index", "-1"])
    assert e.value.code == 2
    assert "argument --index: must be an integer >= 0, got -1" in one_error_line(capsys.readouterr().err)


# -- 3. predict into a pipe whose reader stops early -----------------------------------------------------------------
@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """A checkpoint of an untrained cnn_dropout02: predict needs weights, not good ones."""
    from tinynet import models
    from tinynet.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "untrained.safetensors"
    save_checkpoint(path, models.build("cnn_dropout02", seed=0))
    return path


@pytest.mark.parametrize("unbuffered", [True, False], ids=["unbuffered", "buffered"])
def test_predict_into_a_closed_pipe_keeps_the_plot_and_exits_quietly(fashion, untrained, tmp_path, unbuffered):
    """stdout is a real pipe whose reading end is already closed: every write to it fails with EPIPE."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"  # each print reaches the pipe at once (and fails at once)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        r = run_cli("predict", str(untrained), "--index", "169", "--plot", str(tmp_path / "p.png"),
                    stdout=write_end, stderr=subprocess.PIPE, env=env)
    finally:
        os.close(write_end)
    assert r.stderr == "" and r.returncode == 0
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_predict_piped_into_head(fashion, untrained, tmp_path):
    """tinynet predict CKPT --plot p.png | head -1"""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p1 = subprocess.Popen([sys.executable, "-m", "tinynet", "predict", str(untrained), "--index", "169", "--plot",
                           str(tmp_path / "p.png")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    p2 = subprocess.Popen(["head", "-1"], stdin=p1.stdout, stdout=subprocess.PIPE)
    p1.stdout.close()  # head alone holds the reading end now
    out, _ = p2.communicate()
    err = p1.stderr.read()
    p1.stderr.close()
    assert p1.wait() == 0 and err == b""
    assert out.decode().startswith("predicted: ") and out.decode().count("\n") == 1
    assert (tmp_path / "p.png").stat().st_size > 1000


# -- 4. predict --image: unreadable files, huge headers, dark-on-light images ------------------------------------------
def png_header_only(path, width, height, complete=False):
    """A small PNG whose header declares width x height 8-bit grey pixels. Its pixel data is a stub, or with
    ``complete`` every row of black pixels, deflated (a decoder then really fills width x height bytes)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    if complete:
        z, row = zlib.compressobj(9), bytes(1 + width)  # filter byte 0, then the row
        pixels = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    else:
        pixels = zlib.compress(b"\0" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def image169(fashion):
    """Test image 169 (a Pullover) as uint8, light on black like all of Fashion-MNIST."""
    _, (x, y) = fashion
    assert y[169] == 2
    return x[169]


@pytest.fixture(scope="module")
def quickly_trained(fashion, tmp_path_factory):
    """cnn_dropout02 after one epoch on 3,000 images (about a second): enough to get test image 169 right."""
    out = tmp_path_factory.mktemp("quick")
    assert main(["train", "--epochs", "1", "--limit-train", "3000", "--validation", "0", "--limit-test", "100",
                 "--no-plots", "--quiet", "--out", str(out), "--seed", "1"]) == 0
    return out / "best.safetensors"


def test_a_text_file_named_png_is_one_clear_error(untrained, tmp_path, capsys):
    photo = tmp_path / "photo.png"
    photo.write_text("this is not a picture\n")
    assert main(["predict", str(untrained), "--image", str(photo)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(photo) in line and "not an image file" in line


@pytest.mark.parametrize(
    "make,expect",
    [
        (lambda p: p, "no such file"),
        (lambda p: p.mkdir() or p, "cannot be read"),
        (lambda p: png_header_only(p, 28, 28), "cannot decode the image"),  # 28x28 header, pixel data missing
        (lambda p: png_header_only(p, 32, 32), "the image is 32x32 pixels; the models take 28x28"),
    ],
    ids=["missing", "a-folder", "truncated", "32x32"],
)
def test_unusable_image_files_are_one_clear_error(untrained, tmp_path, capsys, make, expect):
    path = make(tmp_path / "img.png")
    assert main(["predict", str(untrained), "--image", str(path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(path) in line and expect in line


def test_a_huge_header_is_refused_before_any_pixel_is_decoded(tmp_path, monkeypatch):
    """A 9000x9000 header (within Pillow's bomb limit): refused from the header, load() is never called."""
    from PIL import ImageFile

    from tinynet.images import ImageError, read_image

    def no_decoding(self):
        raise AssertionError("pixels decoded before the size was checked")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageError, match="the image is 9000x9000 pixels; the models take 28x28"):
        read_image(png_header_only(tmp_path / "big.png", 9000, 9000))


def _peak_rss_mib(*argv):
    """Status and peak resident memory (MiB) of `python -m tinynet ARGV`, measured by a parent of its own."""
    probe = ("import resource, subprocess, sys; "
             "r = subprocess.run([sys.executable, '-m', 'tinynet', *sys.argv[1:]], capture_output=True, text=True); "
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
             "print(r.stderr, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True)
    status, kib = map(int, r.stdout.split())
    return status, kib / 1024, r.stderr


def test_a_20000x20000_png_header_costs_no_memory(untrained, image169, tmp_path):
    """Once drove peak memory to 4.75 GB (decoded, then converted to float64) before the size check refused it."""
    from PIL import Image

    bomb = png_header_only(tmp_path / "bomb.png", 20000, 20000, complete=True)  # 400 MB of pixels, deflated
    assert bomb.stat().st_size < 500_000
    ok = tmp_path / "ok.png"
    Image.fromarray(image169).save(ok)
    status, baseline, _ = _peak_rss_mib("predict", str(untrained), "--image", str(ok))
    assert status == 0
    status, peak, err = _peak_rss_mib("predict", str(untrained), "--image", str(bomb))
    assert status == 2
    line = one_error_line(err)
    assert str(bomb) in line and "refused before decoding" in line and "28x28" in line
    print(f"peak memory: {peak:.0f} MiB refusing the 20000x20000 header, {baseline:.0f} MiB predicting a 28x28 image")
    assert peak < baseline + 100, (peak, baseline)  # decoding alone would take 400 MB (8-bit grey)
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's decompression-bomb limit stays in force


def test_pillow_bomb_limit_stays_in_force(tmp_path, monkeypatch):
    """With a lower limit, a 28x28 image above it is refused: tinynet does not switch the check off."""
    from PIL import Image

    from tinynet.images import ImageError, read_image

    path = tmp_path / "small.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageError, match="refused before decoding.*decompression bomb"):
        read_image(path)


@pytest.mark.parametrize("mode", ["L", "I;16", "RGB", "RGBA", "JPEG-quality-100"])
def test_image_formats_read_as_the_same_grey_levels(image169, tmp_path, mode):
    from PIL import Image

    from tinynet.images import read_image

    path = tmp_path / ("x.jpg" if mode.startswith("JPEG") else "x.png")
    if mode == "I;16":
        Image.fromarray(image169.astype(np.uint16) * 257).save(path)
    elif mode.startswith("JPEG"):
        Image.fromarray(image169).save(path, quality=100)
    else:
        Image.fromarray(image169).convert(mode).save(path)
    got = read_image(path)
    assert got.dtype == np.uint8 and got.shape == (28, 28)
    assert np.abs(got.astype(int) - image169).max() <= (8 if mode.startswith("JPEG") else 0)


def test_fashion_mnist_is_light_on_black_and_inverted_is_not(fashion):
    """The dark-on-light threshold separates all 70,000 images from their inverses."""
    from tinynet.images import LIGHT_BORDER, border_mean

    (x, _), (xt, _) = fashion
    assert border_mean(xt[169]) < LIGHT_BORDER < border_mean(255 - xt[169])
    ring = np.ones((28, 28), bool)
    ring[1:-1, 1:-1] = False
    border = np.concatenate([x, xt])[:, ring].mean(axis=1)
    assert border.max() < LIGHT_BORDER < (255 - border).min()


def test_a_dark_on_light_image_is_refused_and_invert_fixes_it(quickly_trained, image169, tmp_path, capsys):
    """Test image 169 drawn dark on white, as every plot draws garments: misclassified as a Bag when taken as it is."""
    from PIL import Image

    inverted = tmp_path / "pullover_on_white.png"
    Image.fromarray(255 - image169).save(inverted)
    ckpt = str(quickly_trained)

    assert main(["predict", ckpt, "--image", str(inverted)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(inverted) in line and "dark garment on a light background" in line
    assert "--invert" in line and "--as-is" in line

    assert main(["predict", ckpt, "--image", str(inverted), "--invert"]) == 0
    flipped = capsys.readouterr().out
    assert flipped.startswith("predicted: Pullover")
    assert main(["predict", ckpt, "--index", "169"]) == 0  # --invert restores the test image exactly
    assert capsys.readouterr().out.splitlines()[1:] == flipped.splitlines()[1:]

    assert main(["predict", ckpt, "--image", str(inverted), "--as-is"]) == 0  # as it is, if the user insists
    assert not capsys.readouterr().out.startswith("predicted: Pullover")


def test_invert_on_a_light_on_black_image_is_refused(untrained, image169, tmp_path, capsys):
    from PIL import Image

    path = tmp_path / "x.png"
    Image.fromarray(image169).save(path)
    assert main(["predict", str(untrained), "--image", str(path), "--invert"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "after --invert it is a dark garment on a light background" in line and "drop --invert" in line


def test_invert_and_as_is_need_an_image_and_index_excludes_image(untrained, tmp_path, capsys):
    assert main(["predict", str(untrained), "--invert"]) == 2
    assert "--invert and --as-is apply to an --image file" in one_error_line(capsys.readouterr().err)
    assert main(["predict", str(untrained), "--index", "3", "--image", str(tmp_path / "x.png")]) == 2
    assert "not both" in one_error_line(capsys.readouterr().err)


# -- 5. float images in 0-255 (not scaled by to_float) give one warning ---------------------------------------------
def _unscaled_warnings(record):
    return [w for w in record if issubclass(w.category, UserWarning) and "tinynet.data.to_float" in str(w.message)]


@pytest.fixture
def all_warnings():
    import warnings

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")  # not the default once-per-location: every warning is counted
        yield record


def _tiny():
    from helpers import tiny_data, tiny_model

    from tinynet.losses import SoftmaxCrossEntropy
    from tinynet.optim import Adam

    model = tiny_model(0)
    x, y = tiny_data(64)  # values up to 1.3: scaled, with some headroom
    return model, SoftmaxCrossEntropy(), Adam(model.parameters(), lr=1e-4), x, y


def test_fit_warns_once_for_0_255_floats(all_warnings):
    from tinynet.train import fit

    model, loss, opt, x, y = _tiny()
    fit(model, loss, opt, x * 255, y, epochs=2, batch_size=16, validation_data=(x * 255, y), verbose=False,
        terminate_on_nan=False)
    (w,) = _unscaled_warnings(all_warnings)  # once: not per epoch, not again for the validation data
    assert "values up to" in str(w.message) and "[0, 1]" in str(w.message)
    assert w.filename == __file__  # points at the caller's line


@pytest.mark.parametrize("where", ["evaluate", "Sequential.predict", "predict_logits", "validation data"])
def test_evaluate_and_predict_warn_once_for_0_255_floats(all_warnings, where):
    from tinynet.train import evaluate, fit, predict_logits

    model, loss, opt, x, y = _tiny()
    if where == "evaluate":
        evaluate(model, loss, x * 255, y, batch_size=16)  # 4 batches, one warning
    elif where == "Sequential.predict":
        model.predict(x * 255, batch_size=16)
    elif where == "predict_logits":
        predict_logits(model, x * 255, batch_size=16)
    else:
        fit(model, loss, opt, x, y, epochs=1, batch_size=16, validation_data=(x * 255, y), verbose=False)
    (w,) = _unscaled_warnings(all_warnings)
    assert w.filename == __file__


def test_no_warning_for_to_float_data(fashion, all_warnings):
    from tinynet import models
    from tinynet.data import to_float
    from tinynet.losses import SoftmaxCrossEntropy
    from tinynet.optim import Adam
    from tinynet.train import evaluate, fit

    (x_u8, y), _ = fashion
    x = to_float(x_u8[:64])
    assert x.max() == 1.0  # the real thing: scaled, and reaching 1
    model = models.build("cnn_dropout02", seed=0)
    loss = SoftmaxCrossEntropy()
    fit(model, loss, Adam(model.parameters()), x, y[:64], epochs=1, validation_data=(x, y[:64]), verbose=False)
    evaluate(model, loss, x, y[:64])
    model.predict(x)
    assert _unscaled_warnings(all_warnings) == []
    model.predict(x * 255)  # and the same model and data, unscaled, do warn
    assert len(_unscaled_warnings(all_warnings)) == 1


def test_unscaled_check_runs_on_the_device(standin, all_warnings):
    """On the GPU backend the max is taken on the device: one scalar comes back, not the data."""
    from tinynet.checks import warn_if_unscaled

    _, _, _, x, _ = _tiny()
    xd = standin.asarray(x * 255)
    standin.reset_stats()
    assert warn_if_unscaled(xd) is True
    assert standin.stats["to_host"] == 1  # float() of the 0-d max
    assert warn_if_unscaled(standin.asarray(x)) is False
    assert len(_unscaled_warnings(all_warnings)) == 1


def test_monitoring_options_without_validation_say_they_follow_the_training_loss(tmp_path, no_work, capsys):
    (tmp_path / "file").write_text("")  # an --out that is a file: refused right after the note
    assert main(["train", "--select", "best", "--patience", "1", "--out", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert "note: no validation images, so --select best and --patience use the training loss" in err
    assert main(["train", "--validation", "100", "--patience", "1", "--out", str(tmp_path / "file")]) == 2
    assert "note:" not in capsys.readouterr().err


@pytest.mark.parametrize("name", ["p.txt", "p"])
def test_predict_refuses_a_plot_file_matplotlib_cannot_write_before_predicting(untrained, tmp_path, capsys, name):
    assert main(["predict", str(untrained), "--index", "3", "--plot", str(tmp_path / name)]) == 2
    captured = capsys.readouterr()
    assert "matplotlib writes" in one_error_line(captured.err) and "png" in captured.err
    assert captured.out == "" and not list(tmp_path.iterdir())


def test_resume_outside_main_counts_options_that_differ_from_the_defaults_as_given(resumable, no_work):
    from tinynet.errors import UsageError

    args = build_parser().parse_args(["train", "--resume", str(resumable), "--lr", "0.5"])
    with pytest.raises(UsageError, match=r"--lr 0.5 \(the checkpoint's run: --lr 0.01\)"):
        cmd_train(args)


def test_resume_names_the_file_whose_recorded_options_are_damaged(tmp_path, no_work, capsys):
    from tinynet import models
    from tinynet.checkpoint import save_checkpoint
    from tinynet.optim import Adam

    model = models.build("cnn_dropout02", seed=0)
    path = tmp_path / "damaged.safetensors"
    save_checkpoint(path, model, Adam(model.parameters()), extra={"recipe": "{not json"})
    assert main(["train", "--resume", str(path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(path) in line and "recorded training options are not JSON" in line


@pytest.mark.parametrize("argv", [["train"], ["data", "--plots", "out"], ["predict", "x.safetensors", "--plot", "p.png"]])
def test_plots_without_matplotlib_are_refused_before_any_work(monkeypatch, no_work, tmp_path, capsys, argv):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "needs matplotlib" in line and 'pip install -e ".[plot]"' in line

    def loaded(*a):
        raise AssertionError("loaded")

    monkeypatch.setattr(commands, "_load_data", loaded)
    monkeypatch.setattr(experiment, "load_data", loaded)
    if argv == ["train"]:  # --no-plots needs no matplotlib: the run goes on to load the data
        with pytest.raises(AssertionError, match="loaded"):
            main(["train", "--no-plots"])
