"""The domain errors the UI and the CLI turn into messages, gathered where the UI can reach them."""
from __future__ import annotations

from curation.services.permissions import PermissionDenied
from db.repo import ConflictError, NotFoundError

__all__ = ["ConflictError", "InvalidInput", "NotFoundError", "PermissionDenied"]


class InvalidInput(ValueError):
    """The form cannot be saved as it is; the message says what to fix.

    Defined here, apart from any use case, so that services can raise it without importing one another
    (curation.services.annotation re-exports it for the modules that import it from there).
    """
