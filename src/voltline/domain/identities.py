"""Charger identities: the one rule for new identities that the API, the CLI and the OCPP endpoint share.

An identity is the last path segment of `ws(s)://host/ocpp/{identity}` and the username of HTTP
Basic auth (DESIGN: Charger security), so it holds 1-45 characters (the column's size) from ASCII
letters, digits and `*-_=+|@.` — OCPP's identity character set without `:`, which Basic auth
cannot carry in a username. Rows made before the rule keep working; `voltline chargers check`
lists them.
"""

from __future__ import annotations

import re

IDENTITY_MAX = 45
# An ECMA-262 and Python pattern alike (the OpenAPI document shows it as the field's `pattern`).
IDENTITY_PATTERN = r"^[A-Za-z0-9*\-_=+|@.]+$"
_IDENTITY = re.compile(IDENTITY_PATTERN)


def is_valid_identity(identity: str) -> bool:
    """True when a new charger may take this identity."""
    return len(identity) <= IDENTITY_MAX and _IDENTITY.fullmatch(identity) is not None
