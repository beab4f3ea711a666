"""OCPP-J adapter: framing, generated messages, sessions and handlers per OCPP version."""
