"""Who may do what: every role rule of the app, checked here before any change is made."""
from __future__ import annotations

from dataclasses import dataclass

from db.models import RecordStatus, Role


class PermissionDenied(Exception):
    """The signed-in user may not do this; the message says why in the user's words."""


@dataclass(frozen=True)
class Actor:
    """The signed-in user as the services see them."""

    name: str
    role: Role

    @property
    def reviews(self) -> bool:
        return self.role in (Role.curator, Role.admin)


EDITABLE_BY_AUTHOR = (RecordStatus.draft, RecordStatus.rejected)


def can_edit(actor: Actor, *, created_by: str | None, status: RecordStatus) -> bool:
    """Curators and admins edit anything not discarded; annotators their own drafts and rejected items."""
    if actor.reviews:
        return status != RecordStatus.discarded
    return created_by == actor.name and status in EDITABLE_BY_AUTHOR


def authorize(actor: Actor | None, action: str, *, created_by: str | None = None,
              status: RecordStatus | None = None) -> None:
    """Raise PermissionDenied unless `actor` may do `action` on an item by `created_by` in `status`.

    Actions: view, create, save, submit, approve, reject, discard, manage (users and datasets).
    """
    if actor is None:
        raise PermissionDenied("sign in first")
    status = RecordStatus(status) if status is not None else None
    if action == "view":
        return
    if action == "create":
        return  # every role writes new items
    if action == "manage":
        if actor.role != Role.admin:
            raise PermissionDenied("only an admin manages users and datasets")
        return
    if action in ("approve", "reject", "discard"):
        if not actor.reviews:
            raise PermissionDenied(f"only a curator can {action}")
        if action in ("approve", "reject") and status != RecordStatus.submitted:
            done = {"approve": "approved", "reject": "rejected"}[action]
            raise PermissionDenied(f"only a submitted item can be {done}; this one is {status.value}")
        if action == "discard" and status == RecordStatus.discarded:
            raise PermissionDenied("this item is already discarded")
        return
    if action in ("save", "submit"):
        if not can_edit(actor, created_by=created_by, status=status):
            if status == RecordStatus.discarded:
                raise PermissionDenied("this item is discarded")
            if created_by != actor.name:
                raise PermissionDenied(f"this item belongs to {created_by or 'an import'}; annotators edit only their own")
            raise PermissionDenied(f"this item is {status.value}; annotators edit only drafts and rejected items")
        if action == "submit" and status not in EDITABLE_BY_AUTHOR:
            raise PermissionDenied(f"only a draft or rejected item can be submitted; this one is {status.value}")
        return
    raise ValueError(f"unknown action {action!r}")
