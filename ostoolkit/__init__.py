"""ostoolkit: measure what processes and threads really cost on this Linux host."""

__version__ = "0.1.0"
