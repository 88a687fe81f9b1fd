"""Use cases that the UI and CLI call; each takes the db session it works in."""


def open_session(engine):
    """A new database session on the app's engine (the caller commits or rolls back, and closes it)."""
    from db.engine import session_for

    return session_for(engine)
