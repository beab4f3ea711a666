"""API tokens, OCPP passwords and attach pincodes: how they are made and compared."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

TOKEN_PREFIX = "vlt_"
PINCODE_ALPHABET = string.ascii_uppercase.replace("O", "").replace("I", "") + "23456789"
PINCODE_LENGTH = 8
OCPP_PASSWORD_MIN = 16
OCPP_PASSWORD_MAX = 40
# Printable ASCII, space included (what `ocpp_password_problem` accepts); ECMA-262 and Python alike.
OCPP_PASSWORD_PATTERN = r"^[ -~]+$"
GENERATED_PASSWORD_LENGTH = 32


def new_api_token() -> str:
    """A fresh bearer token; shown once, only its hash is kept."""
    return TOKEN_PREFIX + secrets.token_urlsafe(30)


def hash_api_token(token: str) -> str:
    """SHA-256 of an API token (DESIGN: API tokens as SHA-256, no slow KDF)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_pincode() -> str:
    """An 8-character attach pincode without look-alike characters."""
    return "".join(secrets.choice(PINCODE_ALPHABET) for _ in range(PINCODE_LENGTH))


def new_ocpp_password() -> str:
    """A fresh 32-character OCPP password (URL-safe letters and digits); shown once, only its HMAC is kept."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_LENGTH)[:GENERATED_PASSWORD_LENGTH]


def hash_ocpp_password(secret_key: str, password: str) -> str:
    """HMAC-SHA256 of a charger's OCPP password with the server secret."""
    return hmac.new(secret_key.encode(), password.encode(), hashlib.sha256).hexdigest()


def check_ocpp_password(secret_key: str, password: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented OCPP password with the stored hash."""
    return hmac.compare_digest(hash_ocpp_password(secret_key, password), stored_hash)


def ocpp_password_problem(password: str) -> str | None:
    """Why a password cannot be an OCPP AuthorizationKey, or None when it can."""
    if not OCPP_PASSWORD_MIN <= len(password) <= OCPP_PASSWORD_MAX:
        return f"must be {OCPP_PASSWORD_MIN} to {OCPP_PASSWORD_MAX} characters"
    if not password.isascii() or not password.isprintable():
        return "must be printable ASCII"
    return None


def user_hmac(secret_key: str, user_uuid: str, channel: str) -> str:
    """The identity-verification HMAC shown in the user object (`intercom.hmac_*`)."""
    return hmac.new(secret_key.encode(), f"{channel}:{user_uuid}".encode(), hashlib.sha256).hexdigest()
