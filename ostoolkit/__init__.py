"""ostoolkit: measure what processes and threads really cost on this Linux host."""

__version__ = "0.2.0"  # each release: CHANGELOG.md's newest heading (a test holds the two)
