"""Comparing saved reports: figure by figure (engine) and host by host (hosts)."""
