"""The notebooks, as a student meets them: each runs from top to bottom in its own folder (where Jupyter runs it)
without a warning; in the student's copy nothing fails but the exercises' checks, each at its stub; the solutions
(notebooks/solutions/) pass every check. They are stored without outputs, exactly as notebooks/make_notebooks.py
writes them."""

import importlib.util
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
SOLUTIONS = sorted((FOLDER / "solutions").glob("*.ipynb"))
NEEDS_DATA = {"2_train_and_read_the_report", "3_cpu_gpu_and_pytorch"}  # they load the real Fashion-MNIST
FIGURES = {"1_conv_backprop_by_hand": 1, "2_train_and_read_the_report": 3}  # pictures shown inline (others: none)

try:
    import ipywidgets  # noqa: F401  (without it, tqdm.auto warns in every notebook that imports tinynet.train)
    import nbformat
    from nbclient import NotebookClient
except ImportError as exc:  # CI installs them (make test): there their absence is a failure
    if os.environ.get("CI"):
        raise
    pytest.skip(f"needs the notebooks extra (nbclient, ipykernel, ipywidgets): {exc}", allow_module_level=True)


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def execute(path, folder, allow_errors=False):
    """``path`` run in a fresh kernel whose working folder is ``folder``; returns the notebook with its outputs."""
    import matplotlib.font_manager  # noqa: F401  (a fresh machine builds its font cache here, not on a kernel's stderr)

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=allow_errors,
                   resources={"metadata": {"path": str(folder)}}).execute()
    return nb


def outputs(nb, kind):
    """(cell index, output) for every output of one kind ("error", "stderr", "image") in the notebook."""
    return [(i, o) for i, c in enumerate(nb.cells) for o in c.get("outputs", [])
            if (kind == "error" and o.output_type == "error")
            or (kind == "stderr" and o.output_type == "stream" and o.name == "stderr")
            or (kind == "image" and "image/png" in o.get("data", {}))]


def assert_quiet(nb):
    """No warning, no error message: nothing on stderr."""
    noise = outputs(nb, "stderr")
    assert not noise, "\n".join(f"cell {i} wrote to stderr:\n{o.text}" for i, o in noise)


def assert_figures_shown(nb, path):
    """Every figure shown inline, each once (a cell whose last line is a pyplot figure would show it twice)."""
    images = outputs(nb, "image")
    assert len(images) == FIGURES.get(path.stem, 0), [i for i, _ in images]
    for index in {i for i, _ in images}:
        png = [o.data["image/png"] for i, o in images if i == index]
        assert len(set(png)) == len(png), f"cell {index} shows the same figure twice"


def test_there_are_five_and_the_solutions_of_those_with_exercises():
    assert [p.name[:2] for p in NOTEBOOKS] == ["1_", "2_", "3_", "4_", "5_"]
    with_exercises = [p.name for p in NOTEBOOKS
                      if any("exercise" in tags(c) for c in nbformat.read(p, as_version=4).cells)]
    assert [p.name for p in SOLUTIONS] == with_exercises == [NOTEBOOKS[i].name for i in (0, 3, 4)]


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.relative_to(FOLDER).as_posix())
def test_the_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


def test_the_notebooks_are_what_make_notebooks_writes(tmp_path):
    """Run after every edit of make_notebooks.py; cell ids are stable, so an unchanged notebook stays the same."""
    spec = importlib.util.spec_from_file_location("make_notebooks", FOLDER / "make_notebooks.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    make.write_all(tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.ipynb"))
    assert written == sorted(p.relative_to(FOLDER) for p in NOTEBOOKS + SOLUTIONS)
    for rel in written:
        assert json.loads((tmp_path / rel).read_text()) == json.loads((FOLDER / rel).read_text()), \
            f"notebooks/{rel} is not what make_notebooks.py writes: run python notebooks/make_notebooks.py"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_each_exercise_is_a_stub_for_the_student_and_filled_in_in_the_solutions(path):
    solved = nbformat.read(path, as_version=4).cells
    stubbed = nbformat.read(FOLDER / path.name, as_version=4).cells
    assert [c.id for c in stubbed] == [c.id for c in solved]
    exercises = [i for i, c in enumerate(stubbed) if "exercise" in tags(c)]
    checks = [i for i, c in enumerate(stubbed) if "check" in tags(c)]
    assert exercises and checks
    for i, before in zip(exercises, exercises[1:] + [len(stubbed)], strict=True):
        assert "# YOUR CODE HERE\n" in stubbed[i].source and "raise NotImplementedError" in stubbed[i].source
        assert "YOUR CODE HERE" not in solved[i].source and "NotImplementedError" not in solved[i].source
        assert any(i < j < before for j in checks), f"the exercise in cell {i} has no check before the next one"
    for i, (a, b) in enumerate(zip(stubbed, solved, strict=True)):
        assert "SOLUTION" not in a.source + b.source
        if i and i not in exercises:
            assert a.source == b.source, f"cell {i} is not the same in the student's notebook and its solution"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_runs_in_its_folder_and_fails_only_at_its_stubs(path, request):
    """Run as Jupyter runs it, from notebooks/. Every check cell fails at the stub of its exercise
    (NotImplementedError: no solution was left in), and nothing else fails: a student meets no other error."""
    if path.stem in NEEDS_DATA:
        request.getfixturevalue("fashion")
    nb = execute(path, FOLDER, allow_errors=True)
    failed = {i: o.ename for i, o in outputs(nb, "error")}
    assert failed == {i: "NotImplementedError" for i, c in enumerate(nb.cells) if "check" in tags(c)}, \
        "\n".join(f"cell {i}: {o.ename}: {o.evalue}" for i, o in outputs(nb, "error"))
    assert_quiet(nb)
    assert_figures_shown(nb, path)


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_the_solutions_pass_every_check(path):
    nb = execute(path, path.parent)  # an error fails the test here, with its traceback
    assert_quiet(nb)
    assert_figures_shown(nb, path)
    for i, c in enumerate(nb.cells):
        if "check" in tags(c):
            printed = "".join(o.get("text", "") for o in c.outputs)
            assert "right" in printed or "PASS" in printed, f"check cell {i} said: {printed}"


# One wrong answer per exercise, written into the solution: (the solution's line, the wrong one)
WRONG = {
    "1_conv_backprop_by_hand": [  # dy to every element of the window, not only to the winner
        ("return (won * dy[:, :, :, None, :, None]).reshape(x.shape)",
         "return (0 * won + dy[:, :, :, None, :, None]).reshape(x.shape)")],
    "4_your_own_layer": [("return dy * (1 - self.y * self.y)", "return dy * (1 - self.y)")],
    "5_softmax_and_batchnorm_by_hand": [
        ("return (p - onehot) / len(logits)", "return p - onehot"),  # the mean's 1 / N forgotten
        ("dx = gamma * inv_std / n * (n * dy - dbeta - xhat * dgamma)", "dx = gamma * inv_std * dy")],  # as if the
}                                                                        # batch's mean and variance were constants


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_a_wrong_answer_fails_its_checks(path, tmp_path):
    """The checks tell a wrong answer from a right one: each fails with an AssertionError, and says so."""
    nb = nbformat.read(path, as_version=4)
    for right, wrong in WRONG[path.stem]:
        [cell] = [c for c in nb.cells if right in c.source]  # the solution changed? update WRONG
        cell.source = cell.source.replace(right, wrong)
    nbformat.write(nb, tmp_path / path.name)
    nb = execute(tmp_path / path.name, path.parent, allow_errors=True)
    failed = {i: (o.ename, o.evalue) for i, o in outputs(nb, "error")}
    checks = [i for i, c in enumerate(nb.cells) if "check" in tags(c)]
    assert sorted(failed) == checks and all(e == "AssertionError" and "not right yet" in v for e, v in failed.values())


def test_the_benchmark_notebook_runs_from_the_repository_root_too(fashion):
    """It imports bench/, which it finds from the root as it is, and from notebooks/ by putting the root on the path."""
    nb = execute(FOLDER / "3_cpu_gpu_and_pytorch.ipynb", ROOT)
    assert_quiet(nb)
