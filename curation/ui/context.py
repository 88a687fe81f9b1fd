"""What every tab receives: settings, the database, the signed-in user, and friendly errors."""
from __future__ import annotations

import functools
import html
import inspect
import itertools
import logging
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import gradio as gr
from sqlalchemy.engine import Engine
from sqlmodel import Session

from curation.config import Settings
from curation.preview import PreviewError
from curation.publish import PublishError
from curation.services import admin, open_session
from curation.services.admin import actor_for
from curation.services.errors import ConflictError, InvalidInput, NotFoundError, PermissionDenied
from curation.services.history import conflict_summary, saved_version
from curation.services.permissions import Actor, Role
from curation.training.launchers import LaunchError

log = logging.getLogger("instruct_studio.ui")
# While the page load runs (see AppContext.page_load), what it has read once: every tab asks who signs in and
# which datasets exist, and one answer per page load is enough.
_page_load_answers: ContextVar[dict | None] = ContextVar("page_load_answers", default=None)


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    preview_tokenizer: str | None = None
    _loads: list[tuple[Callable, list, list, tuple | None]] = field(default_factory=list)
    _browser_states: list[Any] = field(default_factory=list)
    # Set by the app while building: shared components tabs may wire to (see curation/ui/app.py).
    tabs: Any = None
    tab: Any = None  # the gr.Tab whose build(ctx) is running (e.g. to draw on its .select)
    open_request: Any = None
    browse_filter: Any = None  # hidden Textbox (set by Browse): JSON {dataset, ids, label, nonce} filters Browse

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends normally and rolls back on any error."""
        session = open_session(self.engine)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def actor(self, request: gr.Request | None) -> Actor:
        """The signed-in user; PermissionDenied when nobody is."""
        name = getattr(request, "username", None) if request is not None else None
        answers = _page_load_answers.get()
        if answers is not None and ("actor", name) in answers:
            actor = answers[("actor", name)]
        else:
            with self.session() as session:
                actor = actor_for(session, name)
            if answers is not None:
                answers[("actor", name)] = actor
        if actor is None:
            raise PermissionDenied("sign in first")
        return actor

    @staticmethod
    def require(actor: Actor, *roles: Role) -> None:
        if actor.role != Role.admin and actor.role not in roles:
            raise PermissionDenied(f"this needs the {' or '.join(r.value for r in roles)} role")

    def datasets(self) -> list[str]:
        answers = _page_load_answers.get()
        if answers is not None and "datasets" in answers:
            return list(answers["datasets"])
        with self.session() as session:
            names = [d.name for d in admin.list_datasets(session)]
        if answers is not None:
            answers["datasets"] = names
        return list(names)

    def browser_state(self, storage_key: str) -> gr.BrowserState:
        """A value kept in the browser's localStorage across reloads.

        Rendered by the app outside the tabs: a tab's children mount only when it is first opened, and
        a BrowserState that is not mounted reads as None when the page loads.
        """
        state = gr.BrowserState(None, storage_key=storage_key, render=False)
        self._browser_states.append(state)
        return state

    def on_load(self, fn: Callable, inputs: list | None = None, outputs: list | None = None,
                then: tuple[Callable, list, list] | None = None) -> None:
        """Run fn(*inputs) when the page loads, then `then` = (fn, inputs, outputs) if given.

        Keep it to what the first screen needs (a dropdown's choices, an editor's restored draft): the app runs
        every tab's page-load step in one private listener, so one slow step delays the whole page. Draw a tab's
        heavy content when the tab is opened (ctx.tab.select) instead.
        """
        self._loads.append((fn, list(inputs or []), list(outputs or []), then))

    @contextmanager
    def page_load(self) -> Iterator[None]:
        """A block in which actor() and datasets() ask the database once and answer from memory after."""
        token = _page_load_answers.set({})
        try:
            yield
        finally:
            _page_load_answers.reset(token)

    def friendly(self, fn: Callable) -> Callable:
        """Decorate a handler: domain errors become a short gr.Error; a conflict says what the other person changed."""
        return friendly(fn, self._base_snapshot)

    def _base_snapshot(self, exc: ConflictError) -> dict:
        """The saved version the user was editing when the conflict happened."""
        with self.session() as session:
            return saved_version(session, exc.entity, exc.entity_id, exc.expected_version)


_open_nonce = itertools.count(1)


def open_item(kind: str, item_id: int) -> tuple[str, gr.Tabs]:
    """Outputs for [ctx.open_request, ctx.tabs] that open a record or task in its editor.

    The nonce makes a second click on the same item a change, so it opens again.
    """
    return f"{kind}:{int(item_id)}:{next(_open_nonce)}", gr.Tabs(selected=f"{kind}_tab")


def requested_item(request_value: str | None, kind: str) -> int | None:
    """The id an open request asks the `kind` editor to open, or None if it is for another editor."""
    requested_kind, _, rest = (request_value or "").partition(":")
    return int(rest.split(":")[0]) if requested_kind == kind else None


def error_message(exc: BaseException) -> str | None:
    """The one line a user sees for a domain error; None for an unexpected one."""
    if isinstance(exc, ConflictError):
        mine = getattr(exc, "mine", None) or {}
        theirs = conflict_summary(exc.entity, mine, exc.current) if mine else ""
        who = exc.current.get("updated_by") or "someone else"
        return (f"Not saved: {who} saved this {exc.entity} first (now version {exc.current.get('version')}). "
                + (f"Their change: {theirs}. " if theirs else "")
                + "Your edit is still in the form: copy what you need, then reopen the item.")
    if isinstance(exc, PermissionDenied):
        return f"Not allowed: {exc}."
    if isinstance(exc, NotFoundError):
        return f"Not found: {exc}."
    if isinstance(exc, (InvalidInput, PreviewError, PublishError, LaunchError)):
        return f"{str(exc)[:1].upper()}{str(exc)[1:]}."
    return None


def friendly(fn: Callable, base_snapshot: Callable[[ConflictError], dict] | None = None) -> Callable:
    """Turn domain errors into a short gr.Error (escaped: the toast renders HTML); log the unexpected.

    A generator handler (a streamed draft) stays a generator, so Gradio still streams what it yields.
    """
    def as_message(exc: Exception) -> gr.Error:
        if isinstance(exc, ConflictError) and base_snapshot is not None:
            try:
                exc.mine = base_snapshot(exc)
            except Exception:  # the message is still useful without their change spelled out
                log.exception("could not read the base version of a conflict")
        message = error_message(exc)
        if message is None:
            log.exception("unexpected error in %s", fn.__name__)
            message = "Something went wrong and nothing was changed. The error was logged for the admin."
        return gr.Error(html.escape(message, quote=False), duration=None if isinstance(exc, ConflictError) else 8,
                        print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def streaming(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:  # every error becomes a short message, never a stack trace
                raise as_message(exc) from None

        return streaming

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # every error becomes a short message, never a stack trace
            raise as_message(exc) from None

    return wrapper
