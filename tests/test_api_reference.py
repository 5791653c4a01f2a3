"""The API reference (docs/api.rst) lists every public name, each once, with a page.

Read from the reStructuredText source, without building the site: the names in
the ``.. autosummary::`` blocks, qualified by the module that the latest
``.. module::`` / ``.. currentmodule::`` directive set. A public name is every
name of the ``__all__`` of the modules in ``PUBLIC_MODULES``. A class or
function re-exported by another public module (``mrmoe_sklearn.SummaryFeatures``
is ``mrmoe_sklearn.summary.SummaryFeatures``) is documented once, under either
name; constants must be listed under the module that exports them.
"""

import importlib
import inspect
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"

PUBLIC_MODULES = [
    "mrmoe_sklearn",
    "mrmoe_sklearn.datasets",
    "mrmoe_sklearn.compare",
    "mrmoe_sklearn.summary",
    "mrmoe_sklearn.inspection",
]

_MODULE = re.compile(r"^\.\. (?:current)?module:: (\S+)\s*$")
_DIRECTIVE = re.compile(r"^\.\. autosummary::\s*$")


def _autosummary_entries(text):
    """[(qualified name, has_toctree)] of the autosummary blocks of one reST source."""
    entries = []
    module = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        found = _MODULE.match(line)
        if found:
            module = None if found.group(1) == "None" else found.group(1)
        if _DIRECTIVE.match(line):
            has_toctree = False
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
                item = lines[i].strip()
                if item.startswith(":"):
                    has_toctree = has_toctree or item.startswith(":toctree:")
                elif item:
                    name = item.lstrip("~")
                    entries.append(
                        (name if module is None or name.startswith(module + ".") else f"{module}.{name}", has_toctree)
                    )
                i += 1
            continue
        i += 1
    return entries


def _sources():
    return sorted(p for p in DOCS.glob("*.rst"))


def _documented():
    entries = []
    for path in _sources():
        entries += [(name, toctree, path.name) for name, toctree in _autosummary_entries(path.read_text())]
    return entries


def _resolve(qualified):
    module_name, _, attr = qualified.rpartition(".")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def _public_names():
    return [(m, n) for m in PUBLIC_MODULES for n in importlib.import_module(m).__all__]


def test_parser_reads_the_reference():
    entries = _autosummary_entries(
        ".. module:: pkg\n\n.. autosummary::\n   :toctree: generated/\n   :template: class.rst\n\n"
        "   A\n   ~pkg.sub.B\n\n.. currentmodule:: pkg.sub\n\n.. autosummary::\n\n   c\n\nText `D`.\n"
    )
    assert entries == [("pkg.A", True), ("pkg.sub.B", True), ("pkg.sub.c", False)]


def test_every_entry_is_a_page_of_an_existing_name():
    documented = _documented()
    assert len(documented) >= 40, documented
    names = [name for name, _, _ in documented]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    for name, toctree, source in documented:
        assert toctree, f"{name} ({source}): autosummary block without :toctree:, so no page of its own"
        _resolve(name)  # raises if the name is stale


@pytest.mark.parametrize("module, name", _public_names())
def test_public_name_is_documented(module, name):
    documented = {qualified for qualified, _, _ in _documented()}
    qualified = f"{module}.{name}"
    if qualified in documented:
        return
    obj = getattr(importlib.import_module(module), name)
    assert inspect.isclass(obj) or inspect.isfunction(obj), (
        f"{qualified} is not listed in an autosummary block of docs/*.rst"
    )
    same = [other for other in documented if _resolve(other) is obj]
    assert same, f"{qualified} is not listed in docs/*.rst, under this name or another"


def test_each_object_documented_once():
    objects = {}
    for name, _, _ in _documented():
        obj = _resolve(name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            objects.setdefault(id(obj), []).append(name)
    twice = [names for names in objects.values() if len(names) > 1]
    assert not twice, f"documented under two names: {twice}"
