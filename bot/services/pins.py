"""Safety and duress PINs: 4 to 8 digits, stored only as salted PBKDF2 hashes.

The safety PIN lets a collector say "I'm safe" (and cancel a false alarm). The duress PIN looks the
same to anyone watching the phone, but keeps the alarm open and escalates it silently.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets

ITERATIONS = 60_000
PIN_SHAPE = re.compile(r"^\d{4,8}$")


def _derive(pin: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)


async def hash_pin(pin: str) -> str:
    salt = secrets.token_bytes(16)
    digest = await asyncio.to_thread(_derive, pin, salt, ITERATIONS)  # CPU work off the event loop
    return f"pbkdf2_sha256${ITERATIONS}${salt.hex()}${digest.hex()}"


async def matches(pin: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        _, iterations, salt, digest = stored.split("$")
        candidate = await asyncio.to_thread(_derive, pin.strip(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(candidate.hex(), digest)


def valid_shape(pin: str) -> bool:
    return PIN_SHAPE.match(pin.strip()) is not None
