"""A launched Instruct Studio on a free port with a temporary SQLite database and one user per role."""
from __future__ import annotations

import socket
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

PASSWORDS = {"root": "root-password", "ann": "ann-password", "ben": "ben-password", "cura": "cura-password"}
ROLES = {"root": "admin", "ann": "annotator", "ben": "annotator", "cura": "curator"}
# gradio_client's 20 s default can be too short for an app's first answer while two test processes share two busy
# cores (CI runs pytest -n 2); every test Client takes this instead.
SLOW_LOAD = {"timeout": 120}


@dataclass
class Studio:
    url: str
    database_url: str
    context: object = None  # the app's AppContext (its engine keys the near-duplicate indexes)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(database_url: str) -> None:
    """The users of PASSWORDS and a dataset named demo."""
    from curation.services import admin
    from curation.services.permissions import Actor
    from db.engine import open_database, session_for
    from db.models import Role

    engine = open_database(database_url)
    with session_for(engine) as session:
        for name, role in ROLES.items():
            admin.add_user(session, name, role, PASSWORDS[name])
        admin.create_dataset(session, Actor("root", Role.admin), "demo")
        session.commit()
    engine.dispose()


def add_records(database_url: str, drafts: list, *, by: str, reason: str, status=None,
                dataset: str = "demo") -> list[int]:
    """Insert these RecordDrafts into the dataset (as drafts unless `status` says otherwise); their ids."""
    from db import repo
    from db.engine import open_database, session_for

    engine = open_database(database_url)
    with session_for(engine) as session:
        dataset_id = repo.get_dataset(session, dataset).id
        extra = {"status": status} if status is not None else {}
        ids = repo.insert_records(session, dataset_id, drafts, by=by, reason=reason, **extra)
        session.commit()
    engine.dispose()
    return ids


@contextmanager
def running_studio(database_url: str, **settings) -> Iterator[Studio]:
    """Serve the app on a free port until the block ends; `settings` override Settings fields."""
    import app
    from curation.config import Settings

    port = free_port()
    demo, options = app.create_app(Settings.from_env(database_url=database_url, port=port, **settings))
    # _frontend=False skips only Gradio's "is localhost reachable" probe: a HEAD of the page with a 3 s timeout,
    # which a loaded 2-core machine (two test processes, each with a browser) sometimes misses, failing the
    # launch of a server that is up. The tests then load the page themselves.
    demo.launch(prevent_thread_lock=True, quiet=True, _frontend=False, **options)
    try:
        yield Studio(f"http://127.0.0.1:{port}", database_url, demo.studio_context)
    finally:
        demo.close()
