"""End-to-end tests: a real server, the simulator's chargers, and what the REST API shows."""
