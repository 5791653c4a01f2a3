"""Sphinx configuration of the mrmoe-sklearn documentation site.

Build (from the repository root; see docs/README.md)::

    python -m pip install -e ".[docs]"
    python -m sphinx -W --keep-going -n -b html docs docs/_build/html

``-W`` turns warnings into errors and ``-n`` (nitpicky) reports every broken
cross-reference. ``-D plot_gallery=0`` builds without running the examples.

The build works offline. Links into the documentation of numpy, scikit-learn,
pandas, PyTorch and matplotlib (intersphinx) are added only when the
environment variable ``MRMOE_DOCS_INTERSPHINX=1`` is set, as they need the
network; without it, references to those projects' types render as plain text
(see ``nitpick_ignore_regex`` below).
"""

import importlib
import os
import pkgutil
import sys
from pathlib import Path

from sphinx.errors import PycodeError
from sphinx.pycode import ModuleAnalyzer

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Document the package of this checkout, whatever else is installed.
sys.path.insert(0, str(ROOT))

# Examples draw their figures with matplotlib; no display while building.
os.environ.setdefault("MPLBACKEND", "Agg")

import mrmoe_sklearn  # noqa: E402

# -- Project -----------------------------------------------------------------
project = "mrmoe-sklearn"
author = "the mrmoe-sklearn developers"
copyright = "the mrmoe-sklearn developers, BSD-3-Clause"
release = mrmoe_sklearn.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
if os.environ.get("MRMOE_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "pandas": ("https://pandas.pydata.org/docs", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
        "matplotlib": ("https://matplotlib.org/stable", None),
    }

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "README.md",  # how to build this site, for the repository's readers
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.json",
    "auto_examples/*.pickle",
]
# `name` in reST is a reference to a Python object (MRMoEClassifier, ...).
default_role = "py:obj"

# Broken cross-references fail the build (-n). Objects of other projects are
# only resolvable with intersphinx (MRMOE_DOCS_INTERSPHINX=1); numpydoc's type
# vocabulary ("array-like of shape (n_samples,)") is prose, not an object.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|sklearn|pandas|pd|torch|matplotlib|skorch|scipy|joblib|dask|aeon|ncps)(\..*)?"),
    (r"py:.*", r"(builtins\.)?(int|float|str|bool|dict|list|tuple|object|bytes|callable|None)"),
    (r"py:.*", r"(array-like|array_like|ndarray|path-like|file-like|sequence|iterable|mapping|optional)"),
]
# Docstring problems of the package, suppressed here one by one until the
# docstrings are fixed (each names an object the site does not document):
nitpick_ignore = [
    # compare/_protocol.py, compare_models and compare_on_splits: :mod:`mrmoe_sklearn._data` (private module)
    ("py:mod", "mrmoe_sklearn._data"),
    # datasets/_physionet.py, fetch_physionet2012: :mod:`mrmoe_sklearn.datasets._physionet` (private module)
    ("py:mod", "mrmoe_sklearn.datasets._physionet"),
    # summary.py, summary_statistics: :func:`mrmoe_sklearn._data.check_series` (private function)
    ("py:func", "mrmoe_sklearn._data.check_series"),
    # _data.py, TimeSeriesScaler.fit: :func:`check_series` (private function)
    ("py:func", "check_series"),
]

# -- autodoc / autosummary / numpydoc ------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
# Members are listed by the autosummary templates (docs/_templates/autosummary),
# not a second time by numpydoc.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True


def _defined_by(obj):
    """Module that defined a class member (a property's getter for a property), or None."""
    obj = getattr(obj, "fget", obj)
    return getattr(obj, "__module__", None)


def skip_foreign_members(app, what, name, obj, skip, options):
    """Document the members this package defines, not those every scikit-learn
    estimator or Python exception has (get_params, set_params, score,
    fit_transform, set_output, the metadata-routing ``set_*_request`` methods,
    BaseException's ``args`` and ``with_traceback``): scikit-learn and Python
    document those, and their docstrings refer to labels of scikit-learn's site."""
    if what != "class" or skip:
        return None
    module = _defined_by(obj)
    if module is None or not module.startswith("mrmoe_sklearn"):
        return True
    return None


def _attribute_comment(fullname):
    """The ``#:`` comment of module constant ``fullname``, searched in its module
    and, for a package, in the submodules it re-exports from; None if none."""
    modname, _, attr = fullname.rpartition(".")
    module = importlib.import_module(modname)
    candidates = [modname]
    if hasattr(module, "__path__"):
        candidates += [info.name for info in pkgutil.iter_modules(module.__path__, modname + ".")]
    for candidate in candidates:
        try:
            comments = ModuleAnalyzer.for_module(candidate).find_attr_docs()
        except PycodeError:
            continue
        if ("", attr) in comments:
            return list(comments[("", attr)])
    return None


def document_reexported_constants(app, what, name, obj, options, lines):
    """Constants such as ``mrmoe_sklearn.compare.PEERS`` are assigned, with their
    ``#:`` comment, in a private submodule; autodoc looks for the comment only in
    the module named, and would show the docstring of ``tuple`` or ``int``."""
    if what != "data":
        return
    comment = _attribute_comment(name)
    if comment is not None:
        lines[:] = comment


def setup(app):
    app.connect("autodoc-skip-member", skip_foreign_members)
    app.connect("autodoc-process-docstring", document_reexported_constants)


# -- MyST (the Markdown pages) ----------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

# -- sphinx-gallery --------------------------------------------------------------
# Every example runs at its own default settings, which are already small: the
# four examples that existed when the gallery was added took 38 s together on
# the project's 2-core machine. `-D plot_gallery=0` skips running them.
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/.*\.py$",  # run every example
    "ignore_pattern": r"__init__\.py",
    "doc_module": ("mrmoe_sklearn",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"mrmoe_sklearn": None},
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
}

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"mrmoe-sklearn {release}"
html_static_path = []
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 5,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_context = {"default_mode": "light"}
