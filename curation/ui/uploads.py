"""Who may upload files to the web app: curators and admins, the roles that import data.

Gradio's /gradio_api/upload takes a file from any signed-in user before any listener runs (listeners
only see the stored path), so the role check sits in front of the route, as ASGI middleware. The size
limit is Gradio's own (`max_file_size` at launch, from Settings.max_upload_mb).
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from curation.services.admin import actor_for
from curation.services import open_session

UPLOAD_PATHS = ("/gradio_api/upload", "/upload")


class UploadsForCurators:
    """ASGI middleware: an upload from a signed-in annotator is refused (403) before it is read."""

    def __init__(self, app, engine):
        self.app, self.engine = app, engine

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].rstrip("/") in UPLOAD_PATHS and scope.get("method") == "POST":
            user = self._user(scope)
            if user is not None and not self._may_upload(user):
                response = JSONResponse({"detail": "Not allowed: only curators and admins upload files."},
                                        status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)  # not signed in: Gradio's own check answers 401

    @staticmethod
    def _user(scope) -> str | None:
        gradio_app = scope.get("app")
        tokens, cookie_id = getattr(gradio_app, "tokens", None), getattr(gradio_app, "cookie_id", None)
        if tokens is None:
            return None
        cookies = Request(scope).cookies
        token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
        return tokens.get(token)

    def _may_upload(self, user: str) -> bool:
        with open_session(self.engine) as session:
            actor = actor_for(session, user)
        return actor is not None and actor.reviews
