"""A real database server the user points at with a DSN: drivers, its processes, its costs."""
