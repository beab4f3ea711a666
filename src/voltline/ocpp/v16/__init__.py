"""OCPP 1.6: generated messages (`messages.py`); handlers and commands live beside them."""
