"""A shared preamble left out of near-duplicate search: said on the stored search and in the Diversity tab, and
left out of the editor's live hint too."""
from __future__ import annotations

import os

for _key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_UPDATE_CHECK"):
    os.environ.setdefault(_key, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from tests.ui_server import SLOW_LOAD

# Past the model's 256 tokens: left in, every record would embed the same. It opens with a tag, which the
# Diversity tab must show as text.
PREAMBLE = ("<tools> search(query): looks a query up on the web and returns the top results. "
            "calculator(expression): evaluates an arithmetic expression. Answer the user's request.\n") * 12
SENTENCE = (f"Left out of the comparison: a shared instruction prefix of {len(PREAMBLE):,} characters held by "
            "100% of the records: “<tools> search(query): looks a query up on the web and returns the top…”")
# 20 records (MIN_SHARED_RECORDS): one true pair of near-duplicates and 18 different tasks.
ROWS = [("Give three tips for staying healthy.", "Eat well, sleep, move."),
        ("Give three tips for staying healthy", "Drink water, rest, walk.")] + [
    (f"{verb} the number {n}.", str(n)) for verb in ("Square", "Halve", "Negate", "Spell out", "Double", "Cube")
    for n in (7, 1234, 99)]


@pytest.fixture(scope="module")
def embedder():
    from curation.embeddings import Embedder

    return Embedder(device="cpu", precision="fp32")


def add_dataset(session, name: str, preamble: str = PREAMBLE) -> list[int]:
    from curation.records import RecordDraft
    from db import repo

    dataset = repo.get_or_create_dataset(session, name)
    ids = repo.insert_records(session, dataset.id, [RecordDraft(preamble + i, "", [o]) for i, o in ROWS],
                              by="ann", reason="test")
    session.commit()
    return ids


def stored_run(session, dataset: str, method: str = "semantic"):
    """The latest search as a fresh session reads it from the database."""
    from curation.services.dedup import latest_run
    from db.engine import session_for

    with session_for(session.get_bind()) as fresh:
        return latest_run(fresh, dataset=dataset, method=method)


# ---- the search keeps what it left out ---------------------------------------------------------------

def test_a_search_stores_the_sentence_saying_what_it_left_out(session, embedder):
    from curation.services.dedup import left_out_of_comparison, run_dedup

    add_dataset(session, "tools")
    report = run_dedup(session, dataset="tools", embedder=embedder)
    assert report.left_out == [SENTENCE]
    assert stored_run(session, "tools").left_out == [SENTENCE]
    run_dedup(session, dataset="tools", lexical=True)
    assert stored_run(session, "tools", "lexical").left_out == [SENTENCE]
    # Before any new search, what one would leave out of the records as they are now.
    assert left_out_of_comparison(session, dataset="tools") == [SENTENCE]


def test_a_search_of_records_without_a_preamble_stores_no_sentence(session, embedder):
    from curation.services.dedup import run_dedup

    add_dataset(session, "plain", preamble="")
    assert run_dedup(session, dataset="plain", embedder=embedder).left_out == []
    assert stored_run(session, "plain").left_out == []


def test_the_migration_keeps_the_searches_stored_before_it(db_url, embedder):
    from alembic import command
    from alembic.config import Config

    from curation.services.dedup import run_dedup
    from db.engine import make_engine, migrate, session_for
    from db.models import Dataset, utcnow
    from tests.conftest import REPO

    engine = make_engine(db_url)
    config = Config()
    config.set_main_option("script_location", str(REPO / "db" / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002_dedup")
        dataset_id = connection.execute(sa.insert(Dataset.__table__).returning(Dataset.__table__.c.id),
                                        {"name": "tools", "description": "", "created_at": utcnow()}).scalar_one()
        # The dedup_run table as 0002 made it: today's model has the column this migration adds.
        old_run = sa.table("dedup_run", *[sa.column(name) for name in (
            "dataset_id", "method", "fields", "threshold", "floor", "record_count", "pair_count", "seconds",
            "created_at")])
        connection.execute(sa.insert(old_run), {
            "dataset_id": dataset_id, "method": "semantic", "fields": "instruction+input", "threshold": 0.95,
            "floor": 0.9, "record_count": 0, "pair_count": 0, "seconds": 0.0, "created_at": utcnow()})
    migrate(engine)
    with session_for(engine) as session:
        assert stored_run(session, "tools").left_out is None  # it said nothing then, and says nothing now
        add_dataset(session, "tools")
        run_dedup(session, dataset="tools", embedder=embedder)
        assert stored_run(session, "tools").left_out == [SENTENCE]
    # And back: the column goes, the run stays.
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0014_dedup_left_out-1")
        assert "left_out" not in {c["name"] for c in sa.inspect(connection).get_columns("dedup_run")}
        assert connection.execute(sa.text("SELECT count(*) FROM dedup_run")).scalar_one() == 2
    engine.dispose()


# ---- the editor's live hint ------------------------------------------------------------------------

def test_the_hint_compares_what_follows_the_shared_preamble(session, embedder):
    from curation.services import coverage as service

    ids = add_dataset(session, "tools")
    typed, unrelated = PREAMBLE + "Give three tips for staying healthy!", PREAMBLE + "Name a bird that cannot fly."
    # Left in, the preamble makes anything typed "a near-duplicate of everything".
    raw = embedder.encode([typed, unrelated])
    assert float(np.dot(raw[0], raw[1])) > 0.99
    hint = service.near_duplicate_hint(session, dataset="tools", embedder=embedder)
    assert hint.shared == [(PREAMBLE, ""), ("", "")]
    found = service.closest_records(session, hint, instruction=typed)
    assert sorted(r["id"] for r in found) == ids[:2] and min(r["score"] for r in found) >= 0.95
    assert service.closest_records(session, hint, instruction=unrelated) == []
    # Only the preamble so far, pasted or half typed: it matches nothing yet.
    assert service.closest_records(session, hint, instruction=PREAMBLE) == []
    assert service.closest_records(session, hint, instruction=PREAMBLE[:500]) == []
    # A record saved since the index was built is compared the same way.
    service.remember_record(hint, record_id=999, instruction=unrelated)
    assert [r["id"] for r in service.closest_records(session, hint, instruction=unrelated)] == []  # 999 not stored
    assert hint.index.closest(list(embedder.encode(hint.compared("Name a bird that cannot fly."))), 0.99) == [
        (999, pytest.approx(1.0, abs=1e-5))]


def test_the_hint_without_a_preamble_compares_the_whole_text(session, embedder):
    from curation.services import coverage as service

    ids = add_dataset(session, "plain", preamble="")
    hint = service.near_duplicate_hint(session, dataset="plain", embedder=embedder)
    assert hint.shared == [("", ""), ("", "")]
    found = service.closest_records(session, hint, instruction="Give three tips for staying healthy!")
    assert sorted(r["id"] for r in found) == ids[:2]


# ---- the Diversity tab says it --------------------------------------------------------------------

def test_the_diversity_summary_says_what_the_search_left_out(tmp_path):
    pytest.importorskip("gradio_client")
    from gradio_client import Client

    from curation.ui.near_duplicate_hint import near_duplicates_for
    from db.engine import open_database, session_for
    from tests.ui_server import PASSWORDS, running_studio, seed

    url = f"sqlite:///{tmp_path / 'studio.db'}"
    seed(url)
    engine = open_database(url)
    with session_for(engine) as session:
        ids = add_dataset(session, "demo")
    engine.dispose()
    with running_studio(url) as studio:
        cura = Client(studio.url, auth=("cura", PASSWORDS["cura"]), verbose=False, httpx_kwargs=SLOW_LOAD)
        summary, *_ = cura.predict("demo", "Meaning (embeddings)", "Instruction + input", 0.95,
                                   api_name="/diversity_run")
        shown = SENTENCE.replace("<tools>", "&lt;tools&gt;")
        assert summary.endswith(f" s · {shown}") and "<tools>" not in summary
        summary, *_ = cura.predict("demo", "Meaning (embeddings)", 0.98, api_name="/diversity_groups")
        assert summary.endswith(f" s · {shown}")
        # The editor's hint, in the app's own process, on the same records.
        found = near_duplicates_for(studio.context, "demo", PREAMBLE + "Give three tips for staying healthy!")
        assert sorted(m["id"] for m in found) == ids[:2]
        assert near_duplicates_for(studio.context, "demo", PREAMBLE + "Name a bird that cannot fly.") == []
