"""Where the tests find the installed entry point (ENTRY) and the repository's root (REPO):
kept in a module of their own because most test files need nothing else from the harness.
"""

from __future__ import annotations

import sys
from pathlib import Path

ENTRY = Path(sys.executable).with_name("ostoolkit")
REPO = Path(__file__).resolve().parents[2]
