"""The scale mechanism and the `python -m nckernels run` command."""
import json
import pathlib
import subprocess
import sys

import pytest

from helpers import MYST_HEADER
from nckernels.scales import SCALES, parameter_names, parameterized_notebook, read_chapter, scale_parameters

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p for p in (ROOT / "book").glob("[0-9][0-9]_*.md"))

TOY = MYST_HEADER + """
# Toy

```{code-cell} ipython3
:tags: [parameters]

n = 3
```

```{code-cell} ipython3
from myst_nb import glue
glue("toy_square", n * n, display=False)
assert n > 0, "n must be positive"
```
"""


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_has_parameters_first_and_smoke_scale(chapter):
    names = parameter_names(chapter)  # the names the parameters cell assigns (parsed with ast)
    smoke = scale_parameters(chapter, "smoke")
    assert smoke, f"{chapter.name}: no smoke overrides"
    for key in smoke:
        assert key in names, f"{chapter.name}: smoke override {key!r} is not a parameter"
    for key in scale_parameters(chapter, "paper"):
        assert key in names, f"{chapter.name}: paper override {key!r} is not a parameter"


def test_injection_and_bad_scale(tmp_path):
    chapter = tmp_path / "toy.md"
    chapter.write_text(TOY)
    nb = parameterized_notebook(chapter, {"n": 5})
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "n = 5" in injected[0].source
    assert scale_parameters(chapter, "book") == {}
    with pytest.raises(ValueError, match="scale must be one of"):
        scale_parameters(chapter, "huge")
    with pytest.raises(ValueError, match="no scales file"):
        scale_parameters(chapter, "paper")
    (tmp_path / "untagged.md").write_text(TOY.replace(":tags: [parameters]\n", ""))
    with pytest.raises(ValueError, match="tagged 'parameters'"):
        read_chapter(tmp_path / "untagged.md")
    assert set(SCALES) == {"smoke", "book", "paper"}


def test_run_command_executes_with_overrides_and_fails_loudly(tmp_path):
    chapter = tmp_path / "toy.md"
    chapter.write_text(TOY)
    out = tmp_path / "out" / "toy.ipynb"
    cmd = [sys.executable, "-m", "nckernels", "run", str(chapter), "-p", "n", "7", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    text = out.read_text()
    assert "n = 7" in text and "toy_square" in text and "49" in text
    bad = subprocess.run(cmd[:-5] + ["-p", "n", "0", "--out", str(tmp_path / "bad.ipynb")], capture_output=True, cwd=ROOT, text=True)
    assert bad.returncode != 0 and "n must be positive" in bad.stdout + bad.stderr
    assert not (tmp_path / "bad.ipynb").exists() and (tmp_path / "bad.failed.ipynb").exists()


ENV_TOY = MYST_HEADER + """
# Environment

```{code-cell} ipython3
:tags: [parameters]

names = ["MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_"]
```

```{code-cell} ipython3
import os
from myst_nb import glue
glue("env_seen", {n: os.environ.get(n) for n in names}, display=False)
print("ENV", {n: os.environ.get(n) for n in names})
```
"""


def test_chapter_kernel_starts_with_the_allocator_settings_and_the_caller_keeps_its_own(tmp_path, monkeypatch):
    import os

    from nckernels.experiments.scales import ALLOCATOR_ENV, kernel_environment, run_chapter

    for name in ALLOCATOR_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "12345")  # a user's own value wins
    chapter = tmp_path / "env.md"
    chapter.write_text(ENV_TOY)
    out = run_chapter(chapter, tmp_path / "env.ipynb", progress=False)
    text = out.read_text()
    assert "'MALLOC_MMAP_MAX_': '0'" in text and "'MALLOC_TRIM_THRESHOLD_': '12345'" in text
    # the caller's environment is as it was: the added variable removed, the user's kept
    assert "MALLOC_MMAP_MAX_" not in os.environ and os.environ["MALLOC_TRIM_THRESHOLD_"] == "12345"
    with kernel_environment():
        assert os.environ["MALLOC_MMAP_MAX_"] == ALLOCATOR_ENV["MALLOC_MMAP_MAX_"]
    assert "MALLOC_MMAP_MAX_" not in os.environ


def test_makefile_exports_the_package_allocator_settings():
    import re

    from nckernels.experiments.scales import ALLOCATOR_ENV

    text = (ROOT / "Makefile").read_text()
    exported = dict(re.findall(r"^export (MALLOC_\w+) \?= (\S+)$", text, flags=re.M))
    assert exported == ALLOCATOR_ENV
