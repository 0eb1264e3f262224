"""The registry's database: one SQLAlchemy Core schema on SQLite (default) or PostgreSQL."""
