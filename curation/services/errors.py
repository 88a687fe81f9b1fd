"""The domain errors the UI and the CLI turn into messages, gathered where the UI can reach them."""
from __future__ import annotations

from curation.services.annotation import InvalidInput
from curation.services.permissions import PermissionDenied
from db.repo import ConflictError, NotFoundError

__all__ = ["ConflictError", "InvalidInput", "NotFoundError", "PermissionDenied"]
