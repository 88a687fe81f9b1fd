"""The Diversity map at 52,002 Alpaca records: how long it takes to lay out, and how far apart it sets the named
clusters, UMAP against PCA (issue 16, "a map people can read"; target: under 60 s on two cores).

    python bench/map_build.py [--records 52002] [--vectors PATH] [--part layout|service|both]

The vectors are the instructions' embeddings by the app's model at this machine's default precision, read from
--vectors when the file is there (a .json beside it says how they were made), else embedded and saved there
(30 minutes on two busy cores: the figures below do not include it).

(a) layout alone (curation.maps, curation.diversity): the k-means clusters the map colours and names, UMAP
    (PCA to 50 dimensions, the neighbour search, the layout) and PCA; the silhouette of those clusters in 2-D
    (on a 5,000-point sample) for each, and in the embedding space itself for reference; and the share of each
    record's 15 nearest neighbours by meaning that sit among its 15 nearest on the map.
(b) the service the Diversity tab calls (curation.services.maps.map_report) on a fresh SQLite database whose
    vector cache already holds the vectors: the first open lays the map out and stores it, the second reads it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALPACA = REPO.parent / "shared" / "data" / "alpaca_format" / "stanford_alpaca_52k.json"
VECTORS = "/tmp/alpaca52k_instruction_minilm.npy"
sys.path.insert(0, str(REPO))
for _key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_UPDATE_CHECK"):
    os.environ.setdefault(_key, "1")


def say(line: str) -> None:
    print(line, flush=True)


def instruction_vectors(rows: list[dict], path: Path):
    """The instructions' vectors, from `path` when it holds them for this model and precision, else embedded."""
    import numpy as np

    from curation.embeddings import Embedder

    embedder = Embedder()
    made = {"model": embedder.model_name, "precision": embedder.precision, "texts": "instruction",
            "source": ALPACA.name}
    about = path.with_suffix(".json")
    if path.exists() and about.exists() and json.loads(about.read_text()) == made:
        vectors = np.load(path)
        if len(vectors) >= len(rows):
            return vectors[:len(rows)], embedder
    say(f"embedding {len(rows):,} instructions ({embedder.model_name}, {embedder.precision}); saved to {path}")
    started = time.perf_counter()
    vectors = embedder.encode([r["instruction"] for r in rows])
    say(f"  embedded in {time.perf_counter() - started:.0f} s (not part of the figures below)")
    np.save(path, vectors)
    about.write_text(json.dumps(made))
    return vectors, embedder


def timed(fn, *args):
    """(fn's answer, wall seconds, CPU seconds of this process): the CPU time says what the work costs when other
    processes share the two cores."""
    wall, cpu = time.perf_counter(), time.process_time()
    answer = fn(*args)
    return answer, time.perf_counter() - wall, time.process_time() - cpu


def layout_part(vectors) -> None:
    from sklearn.decomposition import PCA

    from curation import diversity, maps

    n = len(vectors)
    clusters, *kmeans_s = timed(diversity.cluster_labels, vectors)
    _, *import_s = timed(maps._umap)
    reduce = lambda: maps.nearest_neighbours(  # noqa: E731
        PCA(maps.PCA_DIMENSIONS, random_state=0).fit_transform(vectors).astype("float32"), maps.NEIGHBOURS)
    _, *neighbours_s = timed(reduce)
    umap_xy, *umap_s = timed(maps.umap_map, vectors)
    pca_xy, *pca_s = timed(maps.pca_map, vectors)
    search = "exact" if n <= maps.EXACT_UP_TO else "inverted-file"
    epochs = maps.FEW_EPOCHS if n >= maps.FEW_EPOCHS_FROM else "umap-learn's default"
    say(f"(a) layout alone, {n:,} records, {len(set(clusters.tolist()))} k-means clusters, {os.cpu_count()} CPUs "
        "(wall s / CPU s of this process)")
    for label, (wall, cpu) in (("k-means clusters", kmeans_s), ("loading umap (numba's cache)", import_s),
                               (f"  of UMAP: PCA to {maps.PCA_DIMENSIONS} + {search} neighbour search", neighbours_s),
                               (f"UMAP, whole ({epochs} epochs, one thread: seeded)", umap_s), ("PCA", pca_s),
                               ("map build: clusters + UMAP", (kmeans_s[0] + umap_s[0], kmeans_s[1] + umap_s[1]))):
        say(f"  {label:52s}{wall:6.1f} / {cpu:5.1f}")
    say("  target: the map build under 60 s")
    say(f"  silhouette of the clusters in 2-D: UMAP {maps.separation(umap_xy, clusters):.3f}, "
        f"PCA {maps.separation(pca_xy, clusters):.3f} (in the {vectors.shape[1]}-d embedding space itself: "
        f"{maps.separation(vectors, clusters):.3f}; 5,000-point samples)")
    say(f"  {maps.NEIGHBOURS} nearest neighbours by meaning kept beside a record in 2-D: "
        f"UMAP {maps.neighbours_kept(vectors, umap_xy):.3f}, PCA {maps.neighbours_kept(vectors, pca_xy):.3f} "
        "(3,000 records)")


def service_part(rows: list[dict], vectors, embedder) -> None:
    from curation.embeddings import store_vectors, text_hash
    from curation.records import RecordDraft
    from curation.services.maps import map_report
    from db import repo
    from db.engine import open_database, session_for

    with tempfile.TemporaryDirectory() as work:
        engine = open_database(f"sqlite:///{Path(work) / 'studio.db'}")
        started = time.perf_counter()
        with session_for(engine) as session:
            dataset = repo.get_or_create_dataset(session, "alpaca")
            repo.insert_records(session, dataset.id, [RecordDraft(r["instruction"], r["input"], [r["output"]])
                                                      for r in rows], by="import", reason="bench")
            store_vectors(session, embedder.model_name, embedder.precision,
                          [text_hash(r["instruction"]) for r in rows], vectors)
            session.commit()
        say(f"(b) the service, {len(rows):,} records in a fresh SQLite database, vector cache filled "
            f"({time.perf_counter() - started:.0f} s to set up)")
        for label in ("first open: lays out and stores", "second open: reads the stored map"):
            started = time.perf_counter()
            with session_for(engine) as session:
                report = map_report(session, dataset="alpaca", embedder=embedder)
                session.commit()
            say(f"  {label:38s}{time.perf_counter() - started:6.1f} s  ({report['map']['method']}, layout "
                f"{report['map']['seconds']:.1f} s, stored={report['map']['stored']})")
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=52_002, help="the first N Alpaca records (at most 52,002)")
    parser.add_argument("--vectors", default=VECTORS, help=f"the instructions' vectors (.npy; default {VECTORS})")
    parser.add_argument("--part", choices=("layout", "service", "both"), default="both")
    args = parser.parse_args()
    if not ALPACA.exists():
        sys.exit(f"{ALPACA} is absent: this benchmark reads ../shared/data")
    rows = json.loads(ALPACA.read_text())[:args.records]
    vectors, embedder = instruction_vectors(rows, Path(args.vectors))
    if args.part in ("layout", "both"):
        layout_part(vectors)
    if args.part in ("service", "both"):
        service_part(rows, vectors, embedder)


if __name__ == "__main__":
    main()
