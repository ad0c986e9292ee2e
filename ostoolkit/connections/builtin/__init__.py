"""Built-in servers: process-, thread-per-connection and a pooler, and what a connection costs."""
