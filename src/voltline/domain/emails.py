"""The email address rule shared by the API's validation and the CLI (Laravel's `email` rule, loosely)."""

from __future__ import annotations

import re

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def is_valid_email(text: str) -> bool:
    """One `@`, a dot in the domain, no whitespace."""
    return bool(EMAIL.match(text))
