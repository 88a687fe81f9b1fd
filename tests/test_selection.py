"""Selection to a budget: DEITA's score-first, diversity-aware rule, top-N and threshold, exact on small fixtures;
named selections with their recipe, listed and compared."""
from __future__ import annotations

import numpy as np
import pytest

from curation import selection
from curation.records import RecordDraft
from curation.services.permissions import Actor, PermissionDenied
from curation.services.selections import (SelectionError, compare_selections, run_selection, selected_ids,
                                          selections)
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
