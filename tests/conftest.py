"""Shared fixtures: offline environment, a fresh database on SQLite and (when up) PostgreSQL."""
from __future__ import annotations

import os
import socket
import tempfile
import uuid
from pathlib import Path

# Nothing may wait on a network that is not there (set before any HF library is imported).
for _key, _value in {
    "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_key, _value)
# The static model is distilled from the bundled MiniLM on first use (a minute or two): once per machine, shared by
# the test processes (its file lock keeps two from distilling at once), not once per test.
os.environ.setdefault("STATIC_MODELS_DIR", str(Path(tempfile.gettempdir()) / "instruct-studio-static-models"))

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

requires_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")


def postgres_is_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_server_url():
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    if not postgres_is_up():
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required (REQUIRE_POSTGRES=1) but does not answer")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 does not answer")
    import psycopg

    name = f"instruct_studio_test_{uuid.uuid4().hex[:10]}"
    admin = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """The URL of an empty database: a SQLite file, or a clean PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'studio.db'}"
    url = request.getfixturevalue("postgres_server_url")
    _reset_postgres(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'studio.db'}"


@pytest.fixture
def engine(db_url):
    from db.engine import open_database

    engine = open_database(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    from db.engine import session_for

    with session_for(engine) as session:
        yield session


# Seconds each of the longest modules took in a whole run (scripts/test.sh, 3 processes, this 2-core machine,
# 2026-12-04): they start first, longest first, so that none starts near the end and keeps one process working
# alone while the others wait (CI's wall time is the last process's).
MODULE_SECONDS = {
    "tests/test_evaluation_jobs.py": 377, "tests/e2e/test_browser.py": 296, "tests/test_training.py": 295,
    "tests/e2e/test_bulk_review_browser.py": 234, "tests/e2e/test_import_templates_browser.py": 222,
    "tests/e2e/test_distributed_browser.py": 195, "tests/test_distributed_search.py": 164,
    "tests/e2e/test_record_drafts_browser.py": 162, "tests/e2e/test_publish_browser.py": 158,
    "tests/test_hub_import.py": 145, "tests/test_map.py": 142, "tests/test_dedup_rerun.py": 136,
    "tests/e2e/test_task_drafts_browser.py": 127, "tests/test_shared_data.py": 126,
    "tests/e2e/test_hint_at_size_browser.py": 120, "tests/e2e/test_quality_browser.py": 115,
    "tests/e2e/test_find_similar_browser.py": 110, "tests/e2e/test_guidelines_browser.py": 108,
    "tests/e2e/test_assignments_browser.py": 101, "tests/test_evaluation_harness.py": 87,
    "tests/e2e/test_map_browser.py": 87, "tests/test_generation_jobs.py": 77, "tests/test_evaluation_hf_jobs.py": 76,
    "tests/test_templates.py": 71, "tests/test_selection_real_vectors.py": 69, "tests/test_dedup.py": 67,
    "tests/e2e/test_hint_browser.py": 64, "tests/test_assignments.py": 60, "tests/test_train_on_selection.py": 59,
    "tests/test_publish.py": 57, "tests/test_llm_backends.py": 56, "tests/test_draft_cli.py": 54,
}


def pytest_collection_modifyitems(config, items):
    """The longest modules first (MODULE_SECONDS), then the other modules with a slow test, each module's tests kept
    together and in order: the test processes (scripts/test.sh --dist loadfile) take modules in this order."""
    def module(item) -> str:
        return item.nodeid.split("::")[0]

    slow_modules = {module(item) for item in items if item.get_closest_marker("slow")}
    # a stable sort: the order is otherwise kept
    items.sort(key=lambda item: (-MODULE_SECONDS.get(module(item), 0), module(item) not in slow_modules))
