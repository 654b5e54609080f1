"""PostgreSQL: the server (embedded or DSN), migrations, queries, LISTEN/NOTIFY."""
