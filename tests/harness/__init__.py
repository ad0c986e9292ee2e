"""The tests' helpers, one submodule per concern; import names from the submodules themselves.

Nothing here ever kills a process but one carrying the marker of a run it started.
"""
