"""``connections --real``: throwaway PostgreSQL, MariaDB and PgBouncer servers under load."""
