"""SCRAM-SHA-256 verifiers as PostgreSQL stores them in pg_authid.rolpassword.

Lets the deploy tell whether the role's stored password already is the wanted one (no change,
no ALTER ROLE) without sending the password anywhere: recompute with the stored salt, compare.
Format: SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import stringprep
import unicodedata

_VERIFIER = re.compile(
    r"SCRAM-SHA-256\$(?P<iterations>[0-9]+):(?P<salt>[A-Za-z0-9+/=]+)"
    r"\$(?P<stored_key>[A-Za-z0-9+/=]+):(?P<server_key>[A-Za-z0-9+/=]+)\Z"
)


def _prohibited(char: str) -> bool:
    return (
        stringprep.in_table_c12(char)
        or stringprep.in_table_c21_c22(char)
        or stringprep.in_table_c3(char)
        or stringprep.in_table_c4(char)
        or stringprep.in_table_c5(char)
        or stringprep.in_table_c6(char)
        or stringprep.in_table_c7(char)
        or stringprep.in_table_c8(char)
        or stringprep.in_table_c9(char)
        or stringprep.in_table_a1(char)  # unassigned code points
    )


def saslprep(password: str) -> str:
    """The password as PostgreSQL's pg_saslprep() prepares it (src/common/saslprep.c).

    Pure ASCII is used as is. Otherwise: map (non-ASCII spaces -> space, "mapped to nothing"
    removed), NFKC; when the mapped string holds prohibited characters or breaks the bidi rules,
    PostgreSQL falls back to the raw password, and so do we. Like PostgreSQL, the checks run on
    the mapped string before normalization.
    """
    if password.isascii():
        return password
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c)
    )
    if not mapped or any(_prohibited(c) for c in mapped):
        return password
    if any(stringprep.in_table_d1(c) for c in mapped):
        if any(stringprep.in_table_d2(c) for c in mapped):
            return password
        if not (stringprep.in_table_d1(mapped[0]) and stringprep.in_table_d1(mapped[-1])):
            return password
    return unicodedata.normalize("NFKC", mapped)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """(StoredKey, ServerKey) of RFC 5802 / RFC 7677."""
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), server_key


def scram_verifier(password: str, salt: bytes, iterations: int = 4096) -> str:
    """PostgreSQL's stored form of `password` for this salt and iteration count."""
    if iterations < 1:
        raise ValueError("iterations must be >= 1")
    if not salt:
        raise ValueError("the salt must not be empty")
    stored_key, server_key = _keys(password, salt, iterations)
    return f"SCRAM-SHA-256${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def scram_matches(password: str, verifier: str | None) -> bool:
    """True when `verifier` (pg_authid.rolpassword) is a SCRAM verifier of `password`.

    False for None (no password), md5 hashes, plain text and anything malformed.
    """
    if not verifier:
        return False
    match = _VERIFIER.match(verifier)
    if not match:
        return False
    try:
        salt = base64.b64decode(match["salt"], validate=True)
        stored_key = base64.b64decode(match["stored_key"], validate=True)
        server_key = base64.b64decode(match["server_key"], validate=True)
    except (binascii.Error, ValueError):
        return False
    iterations = int(match["iterations"])
    if not salt or iterations < 1 or len(stored_key) != 32 or len(server_key) != 32:
        return False
    expected_stored, expected_server = _keys(password, salt, iterations)
    return hmac.compare_digest(stored_key, expected_stored) and hmac.compare_digest(
        server_key, expected_server
    )
