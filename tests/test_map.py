"""The Diversity map (issue 16, "a map people can read"): UMAP sets the named clusters apart where PCA overlaps
them, the same seed gives the same map, and a dataset's map is laid out once and read back after that."""
from __future__ import annotations

import json
import os

for _key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_UPDATE_CHECK"):
    os.environ.setdefault(_key, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from curation import diversity, maps  # noqa: E402
from tests.conftest import FIXTURES, SHARED_DATA, requires_shared_data  # noqa: E402

# Eight topics a curator would name (cooking, Python, geography...), twelve instructions each, written for this test.
TOPICS = {k: v for k, v in json.loads((FIXTURES / "map_topics.json").read_text()).items() if not k.startswith("_")}
TEXTS = [text for texts in TOPICS.values() for text in texts]
TOPIC_OF = [n for n, texts in enumerate(TOPICS.values()) for _ in texts]


@pytest.fixture(scope="module")
def embedder():
    from curation.embeddings import Embedder

    return Embedder(device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def topic_vectors(embedder):
    return embedder.encode(TEXTS)


def test_umap_sets_the_named_clusters_apart_where_pca_overlaps_them(topic_vectors):
    clusters = diversity.cluster_labels(topic_vectors)  # the clusters the map colours and names
    umap_xy, pca_xy = diversity.map_2d(topic_vectors), maps.pca_map(topic_vectors)
    umap_score, pca_score = maps.separation(umap_xy, clusters), maps.separation(pca_xy, clusters)
    print(f"\n{len(TEXTS)} records, {len(set(clusters.tolist()))} clusters: silhouette in 2-D "
          f"UMAP {umap_score:.3f}, PCA {pca_score:.3f}; of the eight written topics "
          f"UMAP {maps.separation(umap_xy, TOPIC_OF):.3f}, PCA {maps.separation(pca_xy, TOPIC_OF):.3f}")
    assert umap_score > pca_score + 0.1
    assert maps.separation(umap_xy, TOPIC_OF) > maps.separation(pca_xy, TOPIC_OF) + 0.1
    # and a point's neighbours on the map are more often its neighbours in meaning
    kept_umap, kept_pca = maps.neighbours_kept(topic_vectors, umap_xy), maps.neighbours_kept(topic_vectors, pca_xy)
    print(f"15 nearest neighbours by meaning kept in 2-D: UMAP {kept_umap:.3f}, PCA {kept_pca:.3f}")
    assert kept_umap > kept_pca


@requires_shared_data
@pytest.mark.slow
def test_on_alpaca_too(embedder):
    rows = json.loads((SHARED_DATA / "alpaca_format" / "stanford_alpaca_52k.json").read_text())[:1000]
    vectors = embedder.encode([r["instruction"] for r in rows])
    clusters = diversity.cluster_labels(vectors)
    umap_score = maps.separation(maps.umap_map(vectors), clusters)
    pca_score = maps.separation(maps.pca_map(vectors), clusters)
    print(f"\nthe first 1,000 Alpaca records, {len(set(clusters.tolist()))} clusters: silhouette in 2-D "
          f"UMAP {umap_score:.3f}, PCA {pca_score:.3f}")
    assert umap_score > pca_score


def test_the_same_seed_gives_the_same_map(topic_vectors):
    first = maps.umap_map(topic_vectors, seed=3)
    assert first.shape == (len(TEXTS), 2) and first.dtype == np.float32
    assert np.array_equal(first, maps.umap_map(topic_vectors, seed=3))


def test_a_tiny_set_is_drawn_by_pca():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(maps.UMAP_FROM - 1, 16)).astype(np.float32)
    assert [maps.projection_for(n) for n in (1, maps.UMAP_FROM - 1, maps.UMAP_FROM)] == ["pca", "pca", "umap"]
    assert maps.projection_for(3, "umap") == "pca" and maps.projection_for(500, "pca") == "pca"
    assert np.array_equal(diversity.map_2d(vectors), maps.pca_map(vectors))
    assert diversity.map_2d(vectors[:1]).tolist() == [[0.0, 0.0]]
    with pytest.raises(ValueError, match="unknown projection 'tsne'"):
        maps.projection_for(100, "tsne")


def test_the_neighbour_search_past_the_exact_size_finds_nearly_all_true_neighbours(monkeypatch):
    rng = np.random.default_rng(1)
    vectors = (rng.normal(size=(40, 1, 50)) + rng.normal(0, 0.3, size=(40, 60, 50))).reshape(-1, 50)
    exact, _ = maps.nearest_neighbours(vectors, 10)
    monkeypatch.setattr(maps, "EXACT_UP_TO", 100)
    found, distances = maps.nearest_neighbours(vectors, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, found)])
    assert recall > 0.9 and np.all(distances >= 0)
    assert np.array_equal(found, maps.nearest_neighbours(vectors, 10)[0])  # the same answer every time


def test_the_fingerprint_changes_with_the_text_not_with_anything_else():
    def key(texts, **kw):
        return maps.map_fingerprint(texts, **{"model": "m", "fields": "instruction", "projection": "auto",
                                              "clusters": None, **kw})

    base = key([(1, ("Write a poem.",)), (2, ("Add 2 and 3.",))])
    assert base == key([(1, ("Write a poem.",)), (2, ("Add 2 and 3.",))])
    assert base != key([(1, ("Write a poem!",)), (2, ("Add 2 and 3.",))])
    assert base != key([(1, ("Write a poem.",))])
    assert base != key([(1, ("Write a poem.",)), (3, ("Add 2 and 3.",))])
    assert key([(1, ("ab", "c"))]) != key([(1, ("a", "bc"))])
    assert base != key([(1, ("Write a poem.",)), (2, ("Add 2 and 3.",))], model="other")
    assert base != key([(1, ("Write a poem.",)), (2, ("Add 2 and 3.",))], projection="pca")


# ---- the map kept in the database ----------------------------------------------------------------

@pytest.fixture
def topics_dataset(session):
    from curation.records import RecordDraft
    from db import repo

    dataset = repo.get_or_create_dataset(session, "topics")
    drafts = [RecordDraft(text, "", ["ok"], category=topic) for topic, texts in TOPICS.items() for text in texts]
    ids = repo.insert_records(session, dataset.id, drafts, by="ann", reason="test")
    session.commit()
    return ids


def refuse_to_compute(monkeypatch):
    """Any embedding, clustering or layout from here on fails the test."""
    from curation.services import maps as maps_service

    def computed(*args, **kwargs):
        raise AssertionError("the map was computed again")

    monkeypatch.setattr(maps_service, "part_vectors", computed)
    monkeypatch.setattr(diversity, "map_2d", computed)
    monkeypatch.setattr(diversity, "cluster_labels", computed)


def test_the_map_is_laid_out_once_then_read_from_the_database(session, topics_dataset, embedder, monkeypatch):
    from curation.services.maps import map_report

    stages = []
    first = map_report(session, dataset="topics", embedder=embedder, by="cura",
                       laying_out=lambda: stages.append("layout"))
    session.commit()
    assert first["map"]["stored"] is False and first["map"]["method"] == "umap" and stages == ["layout"]
    assert [p["id"] for p in first["points"]] == topics_dataset and first["records"] == len(TEXTS)

    refuse_to_compute(monkeypatch)
    again = map_report(session, dataset="topics", embedder=embedder)
    assert again["map"] == {**first["map"], "stored": True}
    assert [(p["id"], p["x"], p["y"], p["cluster"]) for p in again["points"]] == [
        (p["id"], p["x"], p["y"], p["cluster"]) for p in first["points"]]
    assert again["clusters"] == first["clusters"] and again["points"][0]["category"] == "cooking"


def test_a_review_keeps_the_map_an_edit_lays_it_out_again(session, topics_dataset, embedder, monkeypatch):
    from curation.services import maps as maps_service
    from db import repo
    from db.models import RecordStatus

    maps_service.map_report(session, dataset="topics", embedder=embedder)
    session.commit()
    first_id = topics_dataset[0]
    repo.update_record(session, first_id, expected_version=1, changes={"status": RecordStatus.approved}, by="cura")
    session.commit()
    with monkeypatch.context() as patched:
        refuse_to_compute(patched)
        reviewed = maps_service.map_report(session, dataset="topics", embedder=embedder)
    assert reviewed["map"]["stored"] is True and reviewed["points"][0]["status"] == "approved"

    repo.update_record(session, first_id, expected_version=2, changes={"instruction": "Write a recipe for soup."},
                       by="cura")
    session.commit()
    assert maps_service.map_report(session, dataset="topics", embedder=embedder, stored_only=True) is None
    edited = maps_service.map_report(session, dataset="topics", embedder=embedder)
    session.commit()
    assert edited["map"]["stored"] is False
    # the edit's map took the place of the first one: one map a dataset, fields and projection
    from sqlmodel import select

    from db.map_tables import RecordMap

    assert len(session.exec(select(RecordMap)).all()) == 1


def test_the_estimate_learns_this_machines_pace(session, topics_dataset):
    from curation.services import maps as maps_service
    from db.models import Dataset
    from sqlmodel import select

    before = maps_service.estimated_seconds(session, 52_002)
    assert before == pytest.approx(maps_service.SECONDS_TO_START + 52_002 * maps_service.SECONDS_PER_RECORD)
    dataset_id = session.exec(select(Dataset.id).where(Dataset.name == "topics")).one()
    ids = np.arange(2_000)
    maps_service.store_map(session, dataset_id=dataset_id, fields="instruction", projection="auto", fingerprint="f",
                           ids=ids, xy=np.zeros((2_000, 2)), clusters=np.zeros(2_000), method="umap", seconds=4.0)
    session.commit()
    assert maps_service.estimated_seconds(session, 20_000) == pytest.approx(maps_service.SECONDS_TO_START + 40.0)
    assert maps_service.map_size(session, dataset="topics") == len(TEXTS)


def test_while_the_map_is_computed_the_view_says_so_in_words(monkeypatch):
    from curation.ui import diversity_map

    build = diversity_map._Build(records=52_002, estimate=44.6)
    assert diversity_map.building_line(build) == ("The map is being computed: 52,002 records, about 45 s after the "
                                                  "map being computed for another dataset.")
    build.phase, build.embedded = "embedding", (12_000, 52_002)
    assert diversity_map.building_line(build) == ("The map is being computed: 52,002 records, about 45 s once they "
                                                  "are embedded (embedding 12,000 of 52,002).")
    build.phase, build.layout_started = "layout", 100.0
    monkeypatch.setattr(diversity_map.time, "monotonic", lambda: 130.0)
    assert diversity_map.building_line(build) == "The map is being computed: 52,002 records, about 15 s."
    monkeypatch.setattr(diversity_map.time, "monotonic", lambda: 160.0)
    assert diversity_map.building_line(build) == "The map is being computed: 52,002 records, nearly done."


def test_the_lasso_sends_browse_the_selected_ids():
    from curation.ui import diversity_map

    assert diversity_map.selected_ids('{"ids": [5, 3, 5, 7], "nonce": 1}') == [5, 3, 7]
    assert diversity_map.selected_ids("not json") == [] and diversity_map.selected_ids(None) == []
    asked = json.loads(diversity_map.browse_request("demo", [5, 3]))
    assert {k: asked[k] for k in ("dataset", "ids", "label")} == {"dataset": "demo", "ids": [5, 3],
                                                                   "label": "lasso on the map"}
