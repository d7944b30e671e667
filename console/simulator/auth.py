"""The service's login: a password checked against a SHA-256 hash, HS256 JWT bearer tokens.

The env file holds only ``AUTH_PASSWORD_SHA256``, never the password; tokens are signed
with ``JWT_SECRET_KEY``, so a token stays valid across restarts, as with the real API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any


def password_hash(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def check_password(password: str, expected_sha256: str) -> bool:
    return hmac.compare_digest(password_hash(password), expected_sha256.strip().lower())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(claims: dict[str, Any], secret: str) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def decode(token: str, secret: str, *, kind: str = "access") -> dict[str, Any] | None:
    """The token's claims if its signature, type and expiry are good; else None."""
    try:
        header, body, signature = token.split(".")
        expected = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            return None
        claims = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(claims, dict) or claims.get("type") != kind or claims.get("exp", 0) < time.time():
        return None
    return claims


def issue(email: str, secret: str, *, access_minutes: int, refresh_days: int) -> dict[str, Any]:
    """The /auth/login response body."""
    now = int(time.time())
    user_id = int(hashlib.sha256(email.encode()).hexdigest()[:6], 16)
    base = {"sub": str(user_id), "email": email, "iat": now}
    access = encode({**base, "type": "access", "exp": now + access_minutes * 60, "jti": uuid.uuid4().hex}, secret)
    refresh = encode({**base, "type": "refresh", "exp": now + refresh_days * 86400, "jti": uuid.uuid4().hex}, secret)
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "bearer",
        "expires_in": access_minutes * 60,
        "user": {
            "id": user_id,
            "email": email,
            "username": email.split("@")[0],
            "role": "admin",
            "status": "active",
        },
    }
