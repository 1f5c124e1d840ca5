"""The API reference page, generated from the package as it is at build time.

A page (``book/api.md``) holds the block::

    ```{api-modules} nckernels
    ```

which is replaced on ``source-read`` by one section per module of the package, found as Python imports
them (``pkgutil.walk_packages``; ``__main__`` and ``_private`` modules skipped), each with
``automodule :members: :ignore-module-all:`` (members *defined* in the module, so the re-exports of the
package ``__init__`` files are not documented twice). Moving a function between modules moves it on
the page; a new module gets its section. sphinx.ext.viewcode links each object to its source.

Cross-references by the public name resolve too: ``{py:func}`nckernels.ntk``` (or ``nk.ntk``) is
looked up by importing the object and using its ``__module__.__qualname__`` (a ``missing-reference``
handler), so a figure caption that names the function drawing it survives a refactor of the layers.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
import types

from sphinx.util import logging

logger = logging.getLogger(__name__)

_BLOCK = re.compile(r"^(?P<fence>`{3,}|:{3,})\{api-modules\}\s*(?P<pkg>[\w.]+)\s*\n(?P=fence)\s*$", re.MULTILINE)
ALIASES = {"nk": "nckernels"}


def _modules(package: str) -> list[str]:
    """The package and its modules, as Python imports them (pkgutil), packages before their modules."""
    pkg = importlib.import_module(package)
    names = [package]

    def onerror(name):
        logger.warning(f"[api_reference] cannot import {name}", type="api_reference", subtype="import")

    for info in pkgutil.walk_packages(pkg.__path__, package + ".", onerror=onerror):
        last = info.name.rsplit(".", 1)[-1]
        if last == "__main__" or any(p.startswith("_") for p in info.name.split(".")):
            continue
        names.append(info.name)
    return sorted(names, key=lambda n: n.split("."))


def _render(package: str) -> str:
    out = []
    for name in _modules(package):
        depth = name.count(".") - package.count(".")
        level = "#" * min(2 + depth, 4)
        out.append(f"{level} `{name}`\n")
        # autodoc emits reStructuredText: it must run inside eval-rst, not as a MyST directive
        out.append(f"```{{eval-rst}}\n.. automodule:: {name}\n   :members:\n   :ignore-module-all:\n```\n")
    return "\n".join(out)


def _source_read(app, docname, source):
    text = source[0]
    if "{api-modules}" not in text:
        return
    source[0] = _BLOCK.sub(lambda m: _render(m.group("pkg")), text)
    # the page is regenerated whenever the package changes: see chapter_deps (chapter_deps config)


def _lookup(dotted: str):
    """The object at ``nckernels.a.b`` (attributes or submodules, aliases included), or None."""
    parts = dotted.split(".")
    try:
        obj = importlib.import_module(parts[0])
    except ImportError:
        return None
    for part in parts[1:]:
        if hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        name = getattr(obj, "__name__", None)
        if not isinstance(obj, types.ModuleType) or name is None:
            return None
        try:
            obj = importlib.import_module(f"{name}.{part}")
        except ImportError:
            return None
    return obj


def _canonical(target: str) -> tuple[str, str | None] | None:
    """(canonical dotted name, 'mod' for modules) of a package name given by its public or old path."""
    head, _, rest = target.partition(".")
    head = ALIASES.get(head, head)
    candidates = [f"{head}.{rest}"] if head == "nckernels" and rest else [f"nckernels.{target}"]
    for dotted in candidates:
        obj = _lookup(dotted)
        if obj is None:
            continue
        if isinstance(obj, types.ModuleType):
            return obj.__name__, "mod"
        module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if module and qualname:
            return f"{module}.{qualname}", None
    return None


def _missing_reference(app, env, node, contnode):
    """Resolve a reference to a package object by its public name (``nckernels.ntk``, ``nk.ntk``),
    an old flat path (``nckernels.two_layer.ntk``) or, in docstrings, a bare or relative name
    (``ntk``, ``two_layer.ntk``, a constant): to where the object is documented."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    if not target or not re.fullmatch(r"[\w.]+", target):
        return None
    domain = env.get_domain("py")
    reftype = node["reftype"]
    found = _canonical(target)
    names = []
    if found is not None:
        names.append(found[0])
        reftype = found[1] or reftype
    # documented objects whose full name ends with the target (unique match only)
    suffix = "." + target.split(".", 1)[1] if target.startswith(("nckernels.", "nk.")) else "." + target
    matches = [name for name in domain.objects if name.endswith(suffix) and name.startswith("nckernels.")]
    if len(matches) == 1:
        names.append(matches[0])
    for name in names:
        if name not in domain.objects and name not in domain.modules:
            continue
        new = node.deepcopy()
        new["reftarget"] = name
        new["refexplicit"] = True  # keep the text the author wrote
        resolved = domain.resolve_xref(env, node["refdoc"], app.builder, reftype, name, new, contnode)
        if resolved is not None:
            return resolved
    return None


def _prose_attributes(app):
    """Napoleon reads the first line of an attribute/property/data docstring as ``type: description``;
    these docstrings are prose (``The seed of this cell's data: ...``), so napoleon is run on them as on
    a method (sections still parsed, the first line kept as prose)."""
    from sphinx.ext.napoleon import _process_docstring

    def process(app, what, name, obj, options, lines):
        kind = "method" if what in ("attribute", "data", "property") else what
        return _process_docstring(app, kind, name, obj, options, lines)

    listeners = app.events.listeners.get("autodoc-process-docstring", [])
    for i, listener in enumerate(listeners):
        if listener.handler is _process_docstring:
            listeners[i] = listener._replace(handler=process)


def _quiet_docstring_markup(app):
    """Bad reST inside a docstring (docutils' own warnings, located ``...:docstring of X``) is
    reported as an info line at the end, not as a warning that fails the -W build: the docstrings
    are plain text as much as reST. Everything else (unresolved references included) still fails."""
    import logging as std_logging

    skipped = app._api_docstring_markup = []

    class DocstringMarkup(std_logging.Filter):
        def filter(self, record):
            if getattr(record, "type", None) == "docutils" and "docstring of " in str(getattr(record, "location", "")):
                skipped.append(f"{record.location}: {record.getMessage()}")
                return False
            return True

    for handler in std_logging.getLogger("sphinx").handlers:
        if type(handler).__name__ == "WarningStreamHandler":
            handler.filters.insert(0, DocstringMarkup())


def _report_markup(app, exception):
    for line in getattr(app, "_api_docstring_markup", []):
        logger.info(f"[api_reference] docstring markup (not an error): {line}")


def setup(app):
    app.setup_extension("sphinx.ext.autodoc")
    app.setup_extension("sphinx.ext.napoleon")
    app.setup_extension("sphinx.ext.viewcode")
    _prose_attributes(app)
    app.connect("source-read", _source_read, priority=400)
    app.connect("missing-reference", _missing_reference)
    app.connect("builder-inited", _quiet_docstring_markup)
    app.connect("build-finished", _report_markup)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
