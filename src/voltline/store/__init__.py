"""Persistence: SQLAlchemy Core tables and the queries the services need."""
