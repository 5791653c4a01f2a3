"""No function of the package over ``LIMIT`` lines without a reason written beside it.

A long function carries a comment starting with ``# Long`` in the lines just
above its ``def`` (or its decorators) saying why, e.g. ``# Long only by its
docstring``. Run this module's ``long_functions()`` to list them with their reasons.
"""

import ast
from pathlib import Path

import mrmoe_sklearn

LIMIT = 80
#: How many lines above the ``def`` (or its first decorator) the reason may start.
REACH = 3
PACKAGE = Path(mrmoe_sklearn.__file__).parent


def long_functions():
    """``(path, line, name, n_lines, reason or None)`` of every function over ``LIMIT`` lines."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            n_lines = node.end_lineno - node.lineno + 1
            if n_lines <= LIMIT:
                continue
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            above = [line.strip() for line in lines[max(0, first - 1 - REACH) : first - 1]]
            reason = next((line for line in above if line.startswith("# Long")), None)
            found.append((path.relative_to(PACKAGE.parent), node.lineno, node.name, n_lines, reason))
    return found


def test_long_functions_say_why():
    unexplained = [
        f"{path}:{line} {name} ({n} lines)" for path, line, name, n, reason in long_functions() if not reason
    ]
    assert not unexplained, f"functions over {LIMIT} lines without a '# Long ...' reason above them: {unexplained}"
