"""Use cases that the UI and CLI call; each takes the db session it works in."""
