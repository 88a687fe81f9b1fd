"""Selection to a budget: DEITA's score-first, diversity-aware rule, top-N and threshold, exact on small fixtures;
named selections with their recipe, listed and compared."""
from __future__ import annotations

import numpy as np
import pytest

from curation import selection
from curation.records import RecordDraft
from curation.services.permissions import Actor, PermissionDenied
from curation.services.selections import (SelectionError, compare_selections, delete_selection, run_selection,
                                          selected_ids, selections)
from db import repo
from db.models import Role
from db.score_tables import store_scores

CURATOR = Actor("cora", Role.curator)


def unit(*xy):
    v = np.array(xy, dtype=np.float32)
    return v / np.linalg.norm(v)


# Five records, best score first; record 1 sits almost on record 0, record 3 halfway between 0 and 2.
SCORES = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
VECTORS = np.stack([unit(1, 0), unit(0.99, 0.14), unit(0, 1), unit(1, 1), unit(-1, 0)])


def test_deita_skips_a_record_too_close_to_one_already_taken():
    assert selection.deita_select(SCORES, VECTORS, 3, 0.1).tolist() == [0, 2, 3]


def test_deita_with_a_wide_threshold_takes_only_far_apart_records():
    # cosine distance of 45 degrees is 0.29: with 0.3, record 3 is too close to records 0 and 2.
    assert selection.deita_select(SCORES, VECTORS, 5, 0.3).tolist() == [0, 2, 4]


def test_deita_stops_at_n_and_never_takes_unscored_records():
    scores = np.array([np.nan, 4.0, 3.0, 2.0, 1.0])
    assert selection.deita_select(scores, VECTORS, 2, 0.1).tolist() == [1, 2]


def naive_deita(scores, vectors, n, threshold):
    taken = []
    for i in selection.top_n(scores, len(scores)):
        if all(1 - float(vectors[i] @ vectors[j]) > threshold for j in taken):
            taken.append(int(i))
        if len(taken) == n:
            break
    return taken


def test_deita_in_chunks_matches_the_one_at_a_time_rule(monkeypatch):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(700, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = rng.integers(0, 6, size=700).astype(float)  # many ties, as judge ratings have
    monkeypatch.setattr(selection, "CHUNK", 64)
    assert selection.deita_select(scores, vectors, 150, 0.5).tolist() == naive_deita(scores, vectors, 150, 0.5)


def test_top_n_and_threshold_order_by_score_then_row():
    scores = np.array([3.0, 5.0, np.nan, 5.0, 1.0])
    assert selection.top_n(scores, 3).tolist() == [1, 3, 0]
    assert selection.above_threshold(scores, 3.0).tolist() == [1, 3, 0]


def test_a_combination_scales_each_score_before_weighing_it():
    combined = selection.combined_score({"judge": np.array([0.0, 5.0, 2.5]), "ifd": np.array([1.0, 0.0, 0.5])},
                                        {"judge": 1.0, "ifd": 3.0})
    assert combined.tolist() == [3.0, 1.0, 2.0]


# --- stored selections ------------------------------------------------------------------------------------

@pytest.fixture
def scored(session):
    """Dataset "shelf": five records with judge ratings 5..1 and the VECTORS above as their embeddings."""
    dataset = repo.get_or_create_dataset(session, "shelf")
    ids = repo.insert_records(session, dataset.id, [RecordDraft(f"Task {i}", "", [f"Answer {i}"]) for i in range(5)],
                              by="ana", reason="import")
    store_scores(session, "judge", [{"record_id": i, "value": s, "basis": "test"} for i, s in zip(ids, SCORES)])
    store_scores(session, "length", [{"record_id": i, "value": float(k), "basis": "test"} for k, i in enumerate(ids)])
    session.commit()
    return ids


def fixed_vectors(records):
    return VECTORS[[int(r["instruction"].split()[-1]) for r in records]]


def test_a_selection_is_stored_with_its_recipe_and_revision(session, scored):
    made = run_selection(session, dataset="shelf", name="best3", weights={"judge": 1.0}, n=3, threshold=0.1,
                         actor=CURATOR, vectors=fixed_vectors)
    assert made.size == 3
    assert made.recipe == {"method": "deita", "weights": {"judge": 1.0}, "n": 3, "threshold": 0.1, "minimum": None,
                           "records_considered": 5}
    assert len(made.revision) == 16
    assert selected_ids(session, dataset="shelf", name="best3") == [scored[0], scored[2], scored[3]]
    assert [s.name for s in selections(session, dataset="shelf")] == ["best3"]


def test_two_selections_compare_by_their_records(session, scored):
    run_selection(session, dataset="shelf", name="diverse", weights={"judge": 1}, n=3, threshold=0.1,
                  actor=CURATOR, vectors=fixed_vectors)
    run_selection(session, dataset="shelf", name="top", method="top", weights={"judge": 1}, n=3, actor=CURATOR)
    comparison = compare_selections(session, dataset="shelf", a="diverse", b="top")
    assert comparison.both == [scored[0], scored[2]]
    assert comparison.only_a == [scored[3]]
    assert comparison.only_b == [scored[1]]
    assert comparison.jaccard == 0.5


def test_threshold_selection_takes_every_record_at_or_above_the_minimum(session, scored):
    made = run_selection(session, dataset="shelf", name="good", method="threshold", weights={"judge": 1},
                         minimum=4.0, actor=CURATOR)
    assert made.size == 2
    assert selected_ids(session, dataset="shelf", name="good") == scored[:2]


def test_a_selection_name_is_taken_once_unless_replaced(session, scored):
    run_selection(session, dataset="shelf", name="x", method="top", weights={"judge": 1}, n=1, actor=CURATOR)
    with pytest.raises(SelectionError, match="a selection named 'x' already exists in 'shelf'"):
        run_selection(session, dataset="shelf", name="x", method="top", weights={"judge": 1}, n=2, actor=CURATOR)
    run_selection(session, dataset="shelf", name="x", method="top", weights={"length": 1}, n=2, actor=CURATOR,
                  replace=True)
    assert selected_ids(session, dataset="shelf", name="x") == [scored[4], scored[3]]


def test_selecting_by_a_score_nobody_computed_says_so(session, scored):
    with pytest.raises(SelectionError, match="no record of 'shelf' has a 'ifd' score yet: score the dataset first"):
        run_selection(session, dataset="shelf", name="y", method="top", weights={"ifd": 1}, n=1, actor=CURATOR)


def test_annotators_do_not_make_selections(session, scored):
    with pytest.raises(PermissionDenied, match="only a curator or admin makes selections"):
        run_selection(session, dataset="shelf", name="z", method="top", weights={"judge": 1}, n=1,
                      actor=Actor("ana", Role.annotator))


def test_a_selection_name_must_be_usable_as_a_hub_config(session, scored):
    with pytest.raises(SelectionError, match="name the selection with letters, digits"):
        run_selection(session, dataset="shelf", name="my selection", method="top", weights={"judge": 1}, n=1,
                      actor=CURATOR)


# --- publishing a selection as its own Hub config ----------------------------------------------------------

def test_a_published_selection_is_its_own_config_and_the_card_states_its_recipe(sqlite_url, tmp_path):
    import json
    import subprocess
    import sys

    import yaml

    from curation.services.selections import selected_ids as ids_of
    from db.engine import open_database, session_for
    from tests.conftest import REPO
    from tests.hub_server import HubServer
    from tests.test_publish import GOOD, seed_dataset

    seed_dataset(sqlite_url)  # 16 approved "Name fruit number i." records among 20
    engine = open_database(sqlite_url)
    with session_for(engine) as session:
        dataset_id = repo.get_dataset(session, "demo").id
        records = sorted(r.id for r in repo.iter_records(session, dataset_id))
        store_scores(session, "judge", [{"record_id": i, "value": float(i), "basis": "test"} for i in records])
        session.commit()
        run_selection(session, dataset="demo", name="best5", method="top", weights={"judge": 1}, n=5, actor=CURATOR)
        chosen = ids_of(session, dataset="demo", name="best5")
    engine.dispose()
    with HubServer(tokens={GOOD: "tester"}) as hub:
        env = hub.client_env(token=GOOD) | {"HF_HOME": str(tmp_path / "hf")}
        run = lambda *args: subprocess.run([sys.executable, "-m", "curation", "--db", sqlite_url, *args],  # noqa: E731
                                           cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
        done = run("publish", "--dataset", "demo", "--repo-id", "tester/demo")
        assert done.returncode == 0, done.stderr
        done = run("select", "publish", "best5", "--dataset", "demo", "--repo-id", "tester/demo")
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        remote = hub.repo("dataset", "tester/demo")
        files = remote.resolve(answer["commit"]).files
        readme = files["README.md"].data.decode()
    assert any(path.startswith("best5/train-") for path in files)
    header = yaml.safe_load(readme.split("---")[1])
    configs = {c["config_name"]: c for c in header["configs"]}
    assert sorted(configs) == ["best5", "messages"]
    assert configs["messages"].get("default") is True and not configs["best5"].get("default")
    approved_chosen = [i for i in chosen if i not in (9, 10, 19, 20)]  # drafts and discarded stay out
    assert answer["records"] == len(approved_chosen)
    assert ("Hub config `best5` (messages format, "
            f"{len(approved_chosen)} records) holds the 5 records highest by judge, out of 18 records.") in readme
    assert "# demo" in readme and "Dataset revision it ran on: `" in readme


# --- what DEITA's rule left out, the live counter, the distributions ---------------------------------------

def test_deita_says_which_taken_record_each_skipped_one_was_too_close_to():
    left_out: dict = {}
    assert selection.deita_select(SCORES, VECTORS, 5, 0.3, left_out).tolist() == [0, 2, 4]
    # record 1 sits on record 0 (cosine 0.99); record 3 is 45 degrees from both 0 and 2 and nearest... both equal,
    # so the first taken (0) is named.
    assert set(left_out) == {1, 3}
    assert left_out[1][0] == 0 and left_out[1][1] == pytest.approx(float(VECTORS[1] @ VECTORS[0]))
    assert left_out[3][0] in (0, 2) and left_out[3][1] == pytest.approx(0.7071, abs=1e-3)


def test_left_out_is_found_inside_one_chunk_and_across_chunks(monkeypatch):
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(300, 6)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = rng.integers(0, 6, size=300).astype(float)
    monkeypatch.setattr(selection, "CHUNK", 32)
    left_out: dict = {}
    taken = selection.deita_select(scores, vectors, 20, 0.4, left_out).tolist()
    assert taken == naive_deita(scores, vectors, 20, 0.4) and len(taken) == 20
    order = selection.top_n(scores, 300).tolist()
    met = order[:order.index(taken[-1]) + 1]  # every candidate met before the budget was filled
    assert order.index(taken[-1]) > 32  # the skipped ones span more than one chunk
    assert set(left_out) == set(met) - set(taken)
    for row, (near, similarity) in left_out.items():
        earlier = [t for t in taken if order.index(t) < order.index(row)]
        assert near in earlier  # the record it is too close to was taken before it
        assert similarity == pytest.approx(max(float(vectors[row] @ vectors[t]) for t in earlier), abs=1e-5)
        assert similarity >= 1 - 0.4


def test_a_stored_selection_keeps_what_it_left_out_and_the_editor_note_says_so(session, scored):
    from curation.services.selections import left_out_of, selection_notes

    run_selection(session, dataset="shelf", name="spread", weights={"judge": 1.0}, n=5, threshold=0.3,
                  actor=CURATOR, vectors=fixed_vectors)
    rows = left_out_of(session, dataset="shelf", name="spread")
    assert [r[0] for r in rows] == [scored[1], scored[3]]  # most similar first
    assert rows[0][1] == scored[0]
    assert selection_notes(session, record_id=scored[1]) == [
        f"Selection `spread`: left out: too close to #{scored[0]} (similarity {rows[0][2]:.2f})"]
    assert selection_notes(session, record_id=scored[0]) == ["Selection `spread`: taken, 1 of 3"]
    # replacing or deleting the selection takes its notes with it
    run_selection(session, dataset="shelf", name="spread", weights={"judge": 1.0}, n=5, threshold=0.001,
                  actor=CURATOR, vectors=fixed_vectors, replace=True)
    assert [r[0] for r in left_out_of(session, dataset="shelf", name="spread")] == []
    delete_selection(session, dataset="shelf", name="spread", actor=CURATOR)
    assert selection_notes(session, record_id=scored[1]) == []


def test_the_preview_counts_what_a_recipe_would_take_without_storing_it(session, scored):
    from curation.services.selections import preview_selection, selections

    found = preview_selection(session, dataset="shelf", weights={"judge": 1.0}, n=5, threshold=0.3,
                              vectors=fixed_vectors)
    assert (found.taken, found.left_out, found.considered, found.records) == (3, 2, 5, 5)
    assert found.taken_ids == [scored[0], scored[2], scored[4]]
    assert found.sentence() == ("Would take **3** of 5 records; 2 left out as too close to a record already taken.")
    assert preview_selection(session, dataset="shelf", weights={"judge": 1.0}, method="threshold",
                             minimum=3.0).taken == 3
    assert selections(session, dataset="shelf") == []


def test_each_scores_distribution_and_the_counter_under_its_histogram(session, scored):
    from curation.services.quality_view import distributions

    found = distributions(session, dataset="shelf")
    assert found["judge"].values.tolist() == SCORES.tolist() and found["judge"].ids == scored
    assert found["judge"].counter(3) == ("**3** of 5 records score at least **3** on judge rating (0 to 5).")
    assert found["ifd"].counter(1) == "No record has a score for instruction-following difficulty (ifd) yet."
