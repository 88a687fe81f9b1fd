"""The live hint on a dataset of the 52,002 Stanford Alpaca records, in a real browser (Debian's chromium through
Playwright): while the index is built the editor says so in words, and once it reports ready the hint shows
the record a retyped instruction repeats, answered from that index (no build per keystroke). How fast is the
benchmark's to say (bench/ui_latency.py --hint, in chromium: p50/p95 at 52k and 500k), not a timed test's: a loaded
CI machine would make a one-second expectation flaky.

Embedding 52k records cold takes many minutes on two cores, so the fixture fills the embedding cache first:
the real MiniLM vectors of the record the test retypes (and of the empty input), and for every other text a
random unit vector (at cosine about 0.05 from anything typed, far below the hint's 0.95). The index is then
built from the cache as after a restart, over all 52,002 records.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import SHARED_DATA
from tests.e2e.test_browser import ARGS, CHROMIUM, box, sign_in  # noqa: F401  (skips without chromium)

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")]
from playwright.sync_api import expect, sync_playwright  # noqa: E402

ALPACA = SHARED_DATA / "alpaca_format" / "stanford_alpaca_52k.json"
TARGET = "Give three tips for staying healthy."  # the first Alpaca record, without an input
TYPED = "Give three tips for staying healthy!"


def fill_embedding_cache(url: str) -> None:
    """Vectors for every text the hint compares: real ones for TARGET and "", random unit vectors for the rest."""
    from sqlalchemy import select

    from curation.embeddings import DEFAULT_FIELDS, Embedder, record_parts, store_vectors, text_hash
    from curation.services.dedup import shared_parts, without_shared_parts
    from db.engine import open_database, session_for
    from db.models import Record

    embedder = Embedder()
    real = dict(zip(["", TARGET], embedder.encode(["", TARGET])))
    engine = open_database(url)
    with session_for(engine) as session:
        rows = [{"instruction": i, "input": n, "output": ""}
                for i, n in session.execute(select(Record.instruction, Record.input))]
        shared = shared_parts(rows, DEFAULT_FIELDS)[0]
        texts = sorted({t for r in rows for t in without_shared_parts(
            record_parts(DEFAULT_FIELDS, r["instruction"], r["input"]), shared)} - set(real))
        vectors = np.random.default_rng(0).standard_normal((len(texts), embedder.dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        texts, vectors = texts + list(real), np.vstack([vectors, np.stack(list(real.values()))])
        for start in range(0, len(texts), 20_000):
            store_vectors(session, embedder.model_name, embedder.precision,
                          [text_hash(t) for t in texts[start:start + 20_000]], vectors[start:start + 20_000])
        session.commit()
    engine.dispose()


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from curation.importer import import_files
    from db.engine import open_database, session_for
    from tests.ui_server import running_studio, seed

    url = f"sqlite:///{tmp_path_factory.mktemp('hint-at-size') / 'studio.db'}"
    seed(url)
    engine = open_database(url)
    with session_for(engine) as session:
        import_files(session, "alpaca", [ALPACA], by="import", keep_duplicates=True)
        session.commit()
    engine.dispose()
    fill_embedding_cache(url)
    with running_studio(url) as running:
        yield running


def test_the_hint_on_a_52k_dataset_answers_from_its_index(studio):
    from curation.ui import near_duplicate_hint
    from curation.ui.near_duplicate_hint import index_ready

    assert json.loads(ALPACA.read_text())[0]["instruction"] == TARGET
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, dialogs = sign_in(browser, studio, "ann")
        page.get_by_role("tab", name="Record").click()
        building = page.locator("div[id^='near-duplicate-building-'] .nd-building")
        hint = page.locator("div[id^='near-duplicate-hint-']")

        # The build (from the cache, started when the dataset is chosen) can end before a loaded machine's page
        # shows its first poll. While the embedding model is held, as while a cold server still loads it, the
        # build cannot end.
        with near_duplicate_hint._model_lock:
            page.locator("#record-dataset input").click()
            page.get_by_role("option", name="alpaca").click()
            box(page, "record-instruction").fill(TYPED)
            expect(building).to_contain_text("Checking for near-duplicates: the index of alpaca is still being built",
                                             timeout=30_000)
            expect(hint.locator(".nd-hint")).to_have_count(0)  # nothing to show yet, nothing waits for the index
            assert not index_ready(studio.context, "alpaca")
        for _ in range(1200):  # the index reports ready (it is built from the cache: seconds, not minutes)
            if index_ready(studio.context, "alpaca"):
                break
            page.wait_for_timeout(100)
        assert index_ready(studio.context, "alpaca")
        expect(building).to_have_count(0, timeout=10_000)  # the polled line goes once the index answers
        # what was typed during the build gets its hint when the build ends, without typing again
        expect(hint).to_contain_text(TARGET, timeout=10_000)

        box(page, "record-instruction").fill("Name a bird that cannot fly.")
        expect(hint.locator(".nd-hint")).to_have_count(0, timeout=10_000)
        box(page, "record-instruction").fill(TYPED)
        expect(hint).to_contain_text(TARGET, timeout=10_000)
        expect(hint).to_contain_text("Possible duplicate")
        assert index_ready(studio.context, "alpaca")  # the typing did not start another build
        browser.close()
    assert dialogs == []
