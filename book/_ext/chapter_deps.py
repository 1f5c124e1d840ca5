"""Re-execute exactly the chapters whose inputs changed (``execute_notebooks: cache``).

Sphinx re-reads a page when its own source changed; myst-nb's cache mode (jupyter-cache, in
``_build/.jupyter_cache``) re-executes a notebook when its code cells changed. Neither sees what a
chapter *reads*: the package, its scale file, the results of ``make paper``. This extension adds them.

For every executable chapter (a ``.md`` with a ``kernelspec`` in its front matter, or a ``.ipynb``) and
every page named in ``chapter_deps``, a *dependency hash* is computed over the content of

* ``chapter_deps_common`` (globs, default ``nckernels/**/*.py``: the package),
* ``chapter_deps_per_chapter`` (globs with ``{name}``, the chapter's file stem; default
  ``book/scales/{name}.yml``),
* ``chapter_deps[docname]`` (globs; in ``_config.yml``, e.g. ``results/06_*/results.csv``),
* the chapter's own front-matter list ``depends_on:`` (globs),

all relative to the book root (the directory of ``_config.yml``); a glob that matches nothing counts
as such, so a results file appearing or disappearing changes the hash. The hashes are recorded in the
Sphinx environment. On ``env-get-outdated`` a page whose hash changed is re-read; on ``source-read``
the hash is written into the chapter's first code cell as the cell metadata ``chapter_deps`` (an
option line in place of the blank line after the cell's options, so line numbers do not move; not
shown in the HTML), and since jupyter-cache hashes cell metadata, a changed input
gives a new cache key: the chapter is really executed again, never served stale from the cache.
Restoring earlier inputs finds the earlier cache entry again.
"""
from __future__ import annotations

import glob
import hashlib
import pathlib
import re

import yaml
from sphinx.util import logging

logger = logging.getLogger(__name__)

META_KEY = "chapter_deps"
_CODE_CELL = re.compile(r"^(?P<fence>`{3,}|~{3,}|:{3,})\{code-cell\}.*$", re.MULTILINE)
_OPTION = re.compile(r"^:[\w-]+:")


def _front_matter(text: str) -> dict:
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        return {}
    try:
        data = yaml.safe_load(text[3:end])
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _is_executable(path: pathlib.Path) -> bool:
    if path.suffix == ".ipynb":
        return True
    if path.suffix != ".md":
        return False
    return "kernelspec" in _front_matter(path.read_text(encoding="utf-8"))


def _hash_globs(root: pathlib.Path, patterns) -> str:
    digest = hashlib.sha256()
    for pattern in patterns:
        digest.update(f"pattern {pattern}\n".encode())
        matches = sorted(glob.glob(str(root / pattern), recursive=True))
        for match in matches:
            path = pathlib.Path(match)
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            digest.update(f"file {path.relative_to(root).as_posix()}\n".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _patterns(app, docname: str, path: pathlib.Path) -> list[str] | None:
    """The dependency globs of a page, or None when the page has none."""
    declared = dict(app.config.chapter_deps or {})
    front = []
    if path.suffix == ".md":
        front = _front_matter(path.read_text(encoding="utf-8")).get("depends_on") or []
        if isinstance(front, str):
            front = [front]
    if docname not in declared and not front and not _is_executable(path):
        return None
    name = path.stem
    return (list(app.config.chapter_deps_common)
            + [p.format(name=name) for p in app.config.chapter_deps_per_chapter]
            + list(declared.get(docname) or []) + list(front))


def _current_hashes(app, env) -> dict[str, str]:
    root = pathlib.Path(app.confdir)
    common_cache: dict[tuple, str] = {}
    hashes = {}
    for docname in sorted(env.found_docs):
        path = pathlib.Path(env.doc2path(docname))
        if not path.is_file():
            continue
        patterns = _patterns(app, docname, path)
        if patterns is None:
            continue
        key = tuple(patterns)
        if key not in common_cache:
            common_cache[key] = _hash_globs(root, patterns)
        hashes[docname] = common_cache[key]
    return hashes


def _env_get_outdated(app, env, added, changed, removed):
    app._chapter_dep_hashes = current = _current_hashes(app, env)
    recorded = getattr(env, "chapter_dep_hashes", {})
    stale = [d for d, h in current.items() if d not in added and recorded.get(d) != h]
    for docname in stale:
        logger.info(f"[chapter_deps] {docname}: inputs changed, re-reading")
    return stale


def _source_read(app, docname, source):
    hashes = getattr(app, "_chapter_dep_hashes", None)
    if hashes is None:  # e.g. a build with no env-get-outdated call
        hashes = app._chapter_dep_hashes = _current_hashes(app, app.env)
    if docname not in hashes:
        return
    digest = hashes[docname]
    if not hasattr(app.env, "chapter_dep_hashes"):
        app.env.chapter_dep_hashes = {}
    app.env.chapter_dep_hashes[docname] = digest
    source[0] = _with_cell_metadata(source[0], digest)


def _with_cell_metadata(text: str, digest: str) -> str:
    """The chapter with ``chapter_deps: digest`` in its first code cell's metadata. In the usual
    ``:tags: [...]`` + blank line form the blank line after the options becomes the option line,
    so line numbers in warnings stay those of the file."""
    match = _CODE_CELL.search(text)
    if match is None:
        return text
    lines = text[match.end() + 1:].split("\n")
    head = text[:match.end() + 1]
    if lines and lines[0].strip() == "---":  # YAML metadata block
        return head + "\n".join([lines[0], f"{META_KEY}: {digest}", *lines[1:]])
    i = 0
    while i < len(lines) and _OPTION.match(lines[i]):
        i += 1
    option = f":{META_KEY}: {digest}"
    if i < len(lines) and not lines[i].strip():
        lines[i] = option
    else:
        lines.insert(i, option)
    return head + "\n".join(lines)


def _purge_doc(app, env, docname):
    getattr(env, "chapter_dep_hashes", {}).pop(docname, None)


def _merge_info(app, env, docnames, other):
    if not hasattr(env, "chapter_dep_hashes"):
        env.chapter_dep_hashes = {}
    for docname in docnames:
        if docname in getattr(other, "chapter_dep_hashes", {}):
            env.chapter_dep_hashes[docname] = other.chapter_dep_hashes[docname]


def setup(app):
    app.add_config_value("chapter_deps_common", ["nckernels/**/*.py"], "env", [list])
    app.add_config_value("chapter_deps_per_chapter", ["book/scales/{name}.yml"], "env", [list])
    app.add_config_value("chapter_deps", {}, "env", [dict])
    app.connect("env-get-outdated", _env_get_outdated)
    app.connect("source-read", _source_read, priority=100)
    app.connect("env-purge-doc", _purge_doc)
    app.connect("env-merge-info", _merge_info)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
