"""Run the CLI as ``python -m ostoolkit``."""

from ostoolkit.cli import main

main()
