"""The entry point's signal boundary, run in a real interpreter: an interrupt that Python
wrapped in a RuntimeError (3.11 does so inside ``__set_name__``) still ends as an interrupt."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    import ostoolkit.cli
    from ostoolkit import entry
    from ostoolkit.errors import Terminated

    def run_cli(argv):
        inner = {"int": KeyboardInterrupt(), "term": Terminated(), "plain": ValueError("bad")}
        raise RuntimeError("Error calling __set_name__") from inner[argv[0]]

    ostoolkit.cli.run_cli = run_cli
    entry.main()
    """
)


@pytest.mark.parametrize(
    ("inner", "status", "line"),
    [("int", 130, "interrupted"), ("term", 143, "terminated")],
)
def test_interrupt_wrapped_in_a_runtime_error_ends_as_the_interrupt(
    tmp_path: Path, inner: str, status: int, line: str
) -> None:
    script = tmp_path / "wrapped.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), inner], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == status, done.stderr
    assert done.stderr.strip() == line


def test_a_runtime_error_without_an_interrupt_behind_it_is_not_hidden(tmp_path: Path) -> None:
    script = tmp_path / "wrapped.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), "plain"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "ValueError: bad" in done.stderr
