"""Users and datasets, which only an admin manages."""
from __future__ import annotations

from sqlmodel import Session, select

from curation.auth import hash_password
from curation.services.annotation import InvalidInput, refuse_null_bytes
from curation.services.permissions import Actor, authorize
from db import repo
from db.models import Dataset, Role, User


def add_user(session: Session, name: str, role: str, password: str) -> User:
    """A new user with a hashed password; InvalidInput if the name is taken or the password too short."""
    name = (name or "").strip()
    if not name or any(c.isspace() for c in name):
        raise InvalidInput("a user name is one word")
    refuse_null_bytes({"user name": name})
    if repo.get_user(session, name) is not None:
        raise InvalidInput(f"there is already a user named {name!r}")
    try:
        user = User(name=name, role=Role(role), password_hash=hash_password(password))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, name: str, password: str) -> None:
    user = repo.get_user(session, name)
    if user is None:
        raise InvalidInput(f"there is no user named {name!r}")
    try:
        user.password_hash = hash_password(password)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    session.add(user)
    session.flush()


def list_datasets(session: Session) -> list[Dataset]:
    """Every dataset, by name."""
    return repo.list_datasets(session)


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(User.name)))


def count_users(session: Session) -> int:
    return len(session.exec(select(User.id)).all())


def actor_for(session: Session, name: str | None) -> Actor | None:
    """The signed-in user as an Actor, None when nobody (or an unknown name) is signed in."""
    if not name:
        return None
    user = repo.get_user(session, name)
    return Actor(user.name, Role(user.role)) if user else None


def admin_add_user(session: Session, actor: Actor, name: str, role: str, password: str) -> User:
    authorize(actor, "manage")
    return add_user(session, name, role, password)


def admin_set_role(session: Session, actor: Actor, name: str, role: str) -> User:
    authorize(actor, "manage")
    refuse_null_bytes({"user name": name})
    user = repo.get_user(session, name)
    if user is None:
        raise InvalidInput(f"there is no user named {name!r}")
    if role not in {r.value for r in Role}:
        raise InvalidInput(f"there is no role {role!r}: choose one of {', '.join(r.value for r in Role)}")
    if user.name == actor.name and Role(role) != Role.admin:
        raise InvalidInput("you cannot take away your own admin role")
    user.role = Role(role)
    session.add(user)
    session.flush()
    return user


def create_dataset(session: Session, actor: Actor, name: str, description: str = "", license: str | None = None,
                   language: str | None = None) -> Dataset:
    authorize(actor, "manage")
    name = (name or "").strip()
    if not name:
        raise InvalidInput("the dataset needs a name")
    refuse_null_bytes({"dataset name": name, "description": description, "license": license, "language": language})
    if repo.get_dataset(session, name) is not None:
        raise InvalidInput(f"there is already a dataset named {name!r}")
    dataset = Dataset(name=name, description=description or "", license=license or None, language=language or None)
    session.add(dataset)
    session.flush()
    return dataset
