"""Where the tests find the installed entry point (ENTRY) and the repository's root (REPO),
and a copy of the sources to build from: kept in a module of their own because most test files
need nothing else from the harness. Also run as a script by tests/pythons.sh (copy REPO DEST).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ENTRY = Path(sys.executable).with_name("ostoolkit")
REPO = Path(__file__).resolve().parents[2]

# What a build of the package needs none of (and what a build would write beside the sources).
NOT_BUILT = shutil.ignore_patterns(
    ".*", "build", "*.egg-info", "__pycache__", "tests", "benchmarks"
)


def source_copy(dest: Path, repo: Path = REPO) -> Path:
    """A copy of the package's sources at ``dest``: pip writes build/ and *.egg-info beside the
    sources it builds, so a build from a test never writes into the checkout."""
    shutil.copytree(repo, dest, ignore=NOT_BUILT)
    return dest


if __name__ == "__main__":
    source_copy(Path(sys.argv[2]), Path(sys.argv[1]))
