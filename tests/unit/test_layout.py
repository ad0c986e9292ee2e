"""The package's shape: no import cycle, nothing importing upward, modules a newcomer can read.

docs/design.md describes the layers; this holds the code to them. Imports are read with ast
(nothing is imported), including the ones inside functions: a late import is still an edge.
Imports under ``if TYPE_CHECKING:`` are for annotations only and are not edges.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ostoolkit"
# A module longer than this is hard to read in one sitting: split it along a concern that
# docs/design.md names. A line count is a backstop, not the rule (one concern per module is):
# code is laid out by the formatter, never packed to stay under it.
MAX_LINES = 600
# Modules that were longer when this test was written. Each may shrink but not grow; split it
# and remove its line here. (A reminder, not a wall.)
STILL_LONG: dict[str, int] = {}
# Code reads as the formatter lays it out: ``# fmt: skip`` only keeps a module-level constant
# table (rows of a tuple laid out as columns) as written, never a call or a signature.
FMT_SKIP = re.compile(r"fmt:\s*skip")
FMT_OFF = re.compile(r"fmt:\s*(off|on)")
# Layers, lowest first: a module may import from its own layer and the ones below, never above.
# Measurement never renders and rendering never measures: render sits beside the measurements,
# and neither imports the other.
LAYERS = (
    (
        "base",
        (
            "__init__",
            "errors",
            "units",
            "files",
            "procfs",
            "cgroup",
            "stats",
            "report",
            "loader",
            "payloads",
            "claims",
            "host",
            "topology",
        ),
    ),
    ("processes", ("deathsig", "budget", "children", "scratch", "mpspawn", "janitor")),
    ("measurements", ("measure", "connections")),
    ("commands", ("suite", "compare")),
    ("output", ("render",)),
    ("entry", ("cli", "entry", "__main__")),
)
# What rendering may not import: it reads reports, never runs or computes a measurement.
OUTPUT_MAY_NOT_IMPORT = ("measurements", "processes", "commands")


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The package modules a module imports (absolute and relative, at any depth)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:  # annotations only: no edge at run time
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def layer_of(name: str) -> int:
    """The index of a module's layer, from its first part below the package."""
    first = name.split(".")[1] if "." in name else "__init__"
    for index, (_, members) in enumerate(LAYERS):
        if first in members:
            return index
    raise AssertionError(f"{name} is in no layer: add it to LAYERS in {__file__}")


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports(path, name, known) for name, path in found.items()}


def test_every_module_is_in_a_layer():
    for name in modules():
        layer_of(name)


def test_nothing_imports_from_a_higher_layer():
    upward = []
    for name, targets in graph().items():
        for target in targets:
            if layer_of(target) > layer_of(name):
                upward.append(f"{name} -> {target}")
    assert not upward, "imports pointing upward:\n" + "\n".join(sorted(upward))


def test_rendering_never_measures():
    banned = {index for index, (layer, _) in enumerate(LAYERS) if layer in OUTPUT_MAY_NOT_IMPORT}
    wrong = [
        f"{name} -> {target}"
        for name, targets in graph().items()
        if name.startswith("ostoolkit.render")
        for target in targets
        if layer_of(target) in banned
    ]
    assert not wrong, "rendering imports measurement code:\n" + "\n".join(sorted(wrong))


def test_the_import_graph_has_no_cycle():
    edges = graph()
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = "open"
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                cycle = [*path[path.index(target) :], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_stay_readable(name):
    lines = len(modules()[name].read_text(encoding="utf-8").splitlines())
    limit = STILL_LONG.get(name, MAX_LINES)
    assert lines <= limit, (
        f"{name} has {lines} lines (limit {limit}): split it along a seam that docs/design.md "
        "names (one concern per module), then update docs/design.md's layout"
    )


def formatter_comments(source: str, pattern: re.Pattern[str]) -> list[int]:
    """The lines whose comment matches ``pattern`` (comments only: never a string's text)."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [
        token.start[0]
        for token in tokens
        if token.type == tokenize.COMMENT and pattern.search(token.string)
    ]


def table_ends(source: str) -> set[int]:
    """The last line of every module-level assignment: where a table's ``# fmt: skip`` sits."""
    return {
        node.end_lineno
        for node in ast.parse(source).body
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.end_lineno is not None
    }


def test_code_is_laid_out_by_the_formatter():
    packed = []
    for path in modules().values():
        name = path.relative_to(PACKAGE.parent).as_posix()
        source = path.read_text(encoding="utf-8")
        off = formatter_comments(source, FMT_OFF)
        packed += [f"{name}:{line}: fmt: off/on (use fmt: skip on a table)" for line in off]
        tables = table_ends(source)
        skipped = formatter_comments(source, FMT_SKIP)
        packed += [f"{name}:{line}" for line in skipped if line not in tables]
    assert not packed, (
        "# fmt: skip is only for a module-level constant table; let ruff format lay out the "
        "rest (name a value or add a helper where its layout reads badly):\n" + "\n".join(packed)
    )
