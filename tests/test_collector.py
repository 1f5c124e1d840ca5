"""The chapter collector: a chapter whose checks cell asserts a false claim fails its test."""
import pathlib
import shutil
import subprocess
import sys

from test_scales import TOY

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(tmp_path, text, smoke):
    book = tmp_path / "book"
    (book / "scales").mkdir(parents=True)
    (book / "toy.md").write_text(text)
    (book / "scales" / "toy.yml").write_text(f"smoke:\n  n: {smoke}\n")
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "book/toy.md"],
                          cwd=tmp_path, capture_output=True, text=True)


def test_passing_chapter_passes_and_smoke_value_is_injected(tmp_path):
    res = _run(tmp_path, TOY.replace('assert n > 0, "n must be positive"', "assert n == 2"), smoke=2)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "3 passed" in res.stdout  # parameters, injected parameters, checks


def test_false_claim_fails(tmp_path):
    res = _run(tmp_path, TOY, smoke=-4)
    assert res.returncode != 0
    assert "n must be positive" in res.stdout
