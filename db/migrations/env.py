"""Alembic environment: runs on the connection db.engine.migrate hands in."""
from alembic import context
from sqlmodel import SQLModel

import importlib
import pkgutil

import db

# Register every table module (db/models.py and db/*_tables.py) on SQLModel.metadata.
for module in pkgutil.iter_modules(db.__path__):
    if module.name == "models" or module.name.endswith("_tables"):
        importlib.import_module(f"db.{module.name}")

target_metadata = SQLModel.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    from sqlalchemy import create_engine

    connection = create_engine(context.config.get_main_option("sqlalchemy.url")).connect()

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
