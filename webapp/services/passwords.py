"""Password hashes: argon2id with a configurable parameter profile, checks that take as
long for an unknown account as for a wrong password, and rehashing on sign-in."""

from __future__ import annotations

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
PROFILES = ("RFC_9106_LOW_MEMORY", "RFC_9106_HIGH_MEMORY", "CHEAPEST")
_hasher = PasswordHasher()
_dummy_hash: str | None = None


def configure(profile: str) -> None:
    """Use an argon2-cffi parameter profile (RFC_9106_LOW_MEMORY unless told otherwise).

    Hashes made with other parameters still verify, and are rehashed at next sign-in.
    """
    global _hasher, _dummy_hash
    if profile not in PROFILES:
        raise ValueError(f"ARGON2_PROFILE must be one of {', '.join(PROFILES)}, not {profile!r}")
    _hasher = PasswordHasher.from_parameters(getattr(profiles, profile))
    _dummy_hash = None


def hash_password(password: str) -> str:
    """An argon2id hash of password."""
    return _hasher.hash(password)


def verify(password_hash: str | None, password: str) -> bool:
    """Whether password matches the hash; with no hash (no such account) a dummy is
    checked, so that a wrong email costs as long as a wrong password."""
    global _dummy_hash
    if password_hash is None:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash("not a password of anyone")
        password_hash = _dummy_hash
    try:
        return _hasher.verify(password_hash, password) and password_hash is not _dummy_hash
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than the current profile's."""
    return _hasher.check_needs_rehash(password_hash)
