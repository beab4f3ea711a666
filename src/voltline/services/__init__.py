"""Use cases: each owns its transaction, calls store/, publishes events (DESIGN "Services tier")."""
