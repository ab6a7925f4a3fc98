"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile).

argon2-cffi is the reference binding of the Password Hashing Competition winner; its
PasswordHasher encodes salt and parameters in the hash, so raising the cost later re-hashes
passwords at their next sign-in (`needs_rehash`) without a migration.
"""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from crm_core.errors import UserError

MIN_LENGTH = 10
MAX_LENGTH = 1024
_hasher = PasswordHasher()
# Verified against when the user is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password, only spends the same time")


def check_strength(password: str, *, name: str = "") -> None:
    """A clear error when a new password is too weak to keep."""
    if len(password) < MIN_LENGTH:
        raise UserError(f"the password must be at least {MIN_LENGTH} characters long (it has {len(password)})")
    if len(password) > MAX_LENGTH:
        raise UserError(f"the password must be at most {MAX_LENGTH} characters long")
    if name and password.strip().lower() == name.strip().lower():
        raise UserError("the password must not be the user's name")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
