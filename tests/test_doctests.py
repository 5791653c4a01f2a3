"""Run the examples in the package's docstrings (issue 14, item 2).

Every module of :mod:`mrmoe_sklearn` (found with :func:`pkgutil.walk_packages`)
goes through :class:`doctest.DocTestFinder` and :class:`doctest.DocTestRunner`,
one test per module, with ``NORMALIZE_WHITESPACE | ELLIPSIS``. Examples marked
``# doctest: +SKIP`` (those that download data) are found but not run.
``test_enough_examples_ran`` keeps the suite from passing vacuously, for
instance if the finder stopped seeing the docstrings of composed ``__doc__``
strings or the modules stopped being found.
"""

import doctest
import functools
import importlib
import io
import pkgutil

import pytest

import mrmoe_sklearn

OPTIONFLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS

#: Examples run (not skipped) when this test was written: 27 in 5 modules. A docstring may
#: lose an example without breaking the suite, but not most of them.
MIN_EXAMPLES_RUN = 20

#: Modules that must not be imported: running ``__main__`` starts the command line.
NOT_IMPORTED = {"mrmoe_sklearn.compare.__main__"}


def _module_names():
    names = [mrmoe_sklearn.__name__]
    for info in pkgutil.walk_packages(mrmoe_sklearn.__path__, prefix=mrmoe_sklearn.__name__ + "."):
        if info.name not in NOT_IMPORTED:
            names.append(info.name)
    return sorted(names)


MODULES = _module_names()


@functools.cache
def _run_module(name):
    """(attempted, failed, report) of the doctests found in module ``name``."""
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    report = io.StringIO()
    for test in finder.find(module, name):
        runner.run(test, out=report.write)
    result = runner.summarize(verbose=False)
    return result.attempted, result.failed, report.getvalue()


def test_modules_found():
    assert len(MODULES) >= 10, MODULES
    for name in ["mrmoe_sklearn.classifier", "mrmoe_sklearn.summary", "mrmoe_sklearn.datasets._synthetic"]:
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    attempted, failed, report = _run_module(name)
    assert failed == 0, f"{failed} of {attempted} docstring examples failed in {name}:\n{report}"


def test_enough_examples_ran():
    ran = {name: _run_module(name)[0] for name in MODULES}
    total = sum(ran.values())
    assert total >= MIN_EXAMPLES_RUN, f"only {total} docstring examples ran: {ran}"
    # the estimator's composed __doc__ is searched too
    assert ran["mrmoe_sklearn.classifier"] >= 1, ran


def _guide_block(marker):
    """The python code block of docs/user_guide.md that contains ``marker``."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "user_guide.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if marker in b]
    assert len(blocks) == 1, f"{len(blocks)} code blocks of the user guide contain {marker!r}"
    return blocks[0]


def test_user_guide_metadata_routing_snippet():
    """The user guide's sample-weight routing through cross_validate runs as written."""
    import numpy as np
    import sklearn

    from mrmoe_sklearn import MRMoEClassifier, make_multirate_classification

    X, y = make_multirate_classification(n_samples=40, n_timesteps=16, random_state=0)
    namespace = {
        "X": X,
        "y": y,
        "w": np.linspace(0.5, 1.5, len(y)),
        "MRMoEClassifier": functools.partial(MRMoEClassifier, max_epochs=1, random_state=0),
    }
    try:
        exec(_guide_block("enable_metadata_routing"), namespace)
    finally:
        sklearn.set_config(enable_metadata_routing=False)
