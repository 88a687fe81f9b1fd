"""Instruct Studio: `python app.py [--host HOST] [--port PORT]` serves the annotation web app.

The composition root: settings -> engine -> services -> UI -> launch. Users come from the database;
create the first admin with `python -m curation users add NAME --role admin`.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

NO_USERS = (
    "Instruct Studio has no users yet, so nobody could sign in. Create an admin first:\n"
    "    python -m curation users add NAME --role admin\n"
    "(the password is asked at a prompt, or read from stdin), then run `python app.py` again.\n"
    "In a container, set the secrets INITIAL_ADMIN and INITIAL_ADMIN_PASSWORD instead."
)


def create_app(settings):
    """The Gradio Blocks and the keyword arguments for its launch(), for `settings`."""
    from curation.auth import gradio_auth
    from curation.ui.app import build_app, launch_options
    from starlette.middleware import Middleware

    from curation.ui.context import AppContext
    from curation.ui.uploads import UploadsForCurators
    from db.engine import open_database

    # The embedding stack is imported here, in one thread: index builds import it in the background, and
    # transformers' lazy module, resolved from two threads at once, can fail ("cannot import name AutoTokenizer").
    import sentence_transformers  # noqa: F401
    from transformers import AutoTokenizer  # noqa: F401

    engine = open_database(settings.database_url)
    context = AppContext(settings=settings, engine=engine, preview_tokenizer=os.environ.get("PREVIEW_TOKENIZER"))
    demo = build_app(context)
    demo.studio_context = context  # for tests and benchmarks that need the app's own services context
    demo.queue(default_concurrency_limit=8)
    options = dict(server_name=settings.host, server_port=settings.port, auth=gradio_auth(engine),
                   auth_message="Sign in with the account your admin created for you.",
                   max_file_size=f"{settings.max_upload_mb}mb",
                   app_kwargs={"middleware": [Middleware(UploadsForCurators, engine=engine)]}, **launch_options())
    return demo, options


def has_users(database_url: str) -> bool:
    """True when someone can sign in; on an empty user table, creates the admin named by
    INITIAL_ADMIN / INITIAL_ADMIN_PASSWORD when both are set (a container's secrets)."""
    from curation.services.admin import add_user, count_users
    from db.engine import open_database, session_for

    engine = open_database(database_url)
    try:
        with session_for(engine) as session:
            if count_users(session) > 0:
                return True
            name, password = os.environ.get("INITIAL_ADMIN"), os.environ.get("INITIAL_ADMIN_PASSWORD")
            if name and password:
                try:
                    add_user(session, name, "admin", password)
                except ValueError as exc:  # InvalidInput: e.g. the password is too short
                    print(f"INITIAL_ADMIN not created: {exc}", file=sys.stderr)
                    return False
                session.commit()
                logging.getLogger("instruct_studio").info("created the first admin %r from INITIAL_ADMIN", name)
                return True
            return False
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    from curation.config import Settings

    parser = argparse.ArgumentParser(prog="python app.py", description="Serve the Instruct Studio web app")
    parser.add_argument("--host", default=None, help="interface to listen on (default 127.0.0.1, or HOST)")
    parser.add_argument("--port", type=int, default=None, help="port (default 7860, or PORT)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "alembic.runtime.plugins"):  # one line per request or plug-in is noise here
        logging.getLogger(chatty).setLevel(logging.WARNING)
    settings = Settings.from_env(host=args.host, port=args.port)
    if not has_users(settings.database_url):
        print(NO_USERS, file=sys.stderr)
        return 2
    demo, options = create_app(settings)
    demo.launch(**options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
