"""Connection models: built-in servers, the load generator and real database servers."""
