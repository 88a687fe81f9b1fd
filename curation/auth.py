"""Passwords: argon2id hashes (argon2-cffi) and the sign-in check the app hands to Gradio's auth."""
from __future__ import annotations

from typing import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

MIN_PASSWORD_LENGTH = 8
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """The argon2id hash to store for a password; raises ValueError for a password too short."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches the stored hash (False for a malformed hash, never an error)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_login(engine: Engine, name: str, password: str) -> bool:
    """True when a user of that name exists and the password is theirs."""
    from db.engine import session_for
    from db.repo import get_user

    if "\x00" in (name or ""):  # no user has one, and PostgreSQL would refuse the query itself
        verify_password(_DUMMY_HASH, password or "")
        return False
    with session_for(engine) as session:
        user = get_user(session, (name or "").strip())
        if user is None:
            # Spend the same time as a real check, so a wrong name cannot be told from a wrong password.
            verify_password(_DUMMY_HASH, password or "")
            return False
        ok = verify_password(user.password_hash, password or "")
        if ok and _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
            session.add(user)
            session.commit()
        return ok


def gradio_auth(engine: Engine) -> Callable[[str, str], bool]:
    """The `auth=` callable for `Blocks.launch`: our password check against the user table."""
    def auth(name: str, password: str) -> bool:
        return check_login(engine, name, password)

    return auth


_DUMMY_HASH = _hasher.hash("not a real password, only for timing")
