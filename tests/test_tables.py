"""The results in README.md, bench/RESULTS.md and docs/ are the recorded run files' (bench/tables.py generates them)."""

from bench.tables import DOCUMENTS, differences, render


def test_the_documents_agree_with_the_recorded_runs():
    assert differences() == [], "run: python -m bench.tables"


def test_a_hand_edited_figure_is_caught(tmp_path):
    doc = tmp_path / "README.md"
    text = DOCUMENTS[0].read_text()  # the README: its figures and tables are generated too
    assert "<!-- fig:demo-accuracy -->" in text and "<!-- table:accuracy-current -->" in text
    start = text.index("<!-- fig:demo-accuracy -->") + len("<!-- fig:demo-accuracy -->")
    end = text.index("<!-- /fig -->", start)
    doc.write_text(text[:start] + "99.99%" + text[end:])
    assert differences([doc]) and render(doc.read_text()) == text


def test_a_target_is_judged_at_the_precision_shown():
    from bench.tables import _met

    assert _met((0.9258 + 0.9250 + 0.9242) / 3, "≥ 92.5%") == "≥ 92.5% — met"  # 0.92499999... in floats
    assert _met(0.9249, "≥ 92.5%") == "≥ 92.5% — **not met**"
    assert _met(0.9, "(decays too fast)") == "(decays too fast)"
