"""Persistence with SQLAlchemy (SQLite by default, PostgreSQL by URL): feedback, card log, analytics.
May import hooks (feedback items) and process; never api, security or the factory."""
