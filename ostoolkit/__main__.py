"""Run the CLI as ``python -m ostoolkit``."""

from ostoolkit.entry import main

main()
