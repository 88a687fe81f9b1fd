"""Near-duplicate search on the Alpaca 52k, then at a larger scale. Each step runs in its own process, so the
peak memory printed is that step's own.

(a) plain: what a user would write: sentence-transformers `encode` (fp32) of every record's instruction and
    input, exact top-10 by blocked matrix product, pairs where both parts have cosine >= threshold.
(b) ours, cold: services.dedup.run_dedup from an empty vector cache (default precision, texts embedded once,
    shortest first; instructions first, HNSW top-10 over them, then the inputs of only those records whose
    instruction has a neighbour at 0.90, and HNSW top-10 over those records' joined vectors), pairs stored.
(c) ours, warm: the same search again; every vector comes from the cache.
(d) Self-Instruct's rule: exact ROUGE-L F1 over all pairs of instructions.
Recall@10 compares the first HNSW search (every instruction) for 2,000 sampled records with exact search; pair recall and precision
compare (b)'s pairs with (a)'s. The larger scale replicates the Alpaca records with small perturbations of the
instruction (two words swapped, one dropped, a word put in front, the final mark changed): it says so.

    .venv/bin/python bench/dedup.py [--scale 500000] [--plain-at-scale]
    .venv/bin/python bench/dedup.py --review-groups [N] [--vectors PATH]   (issue 13: group sizes, see review_report)
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALPACA = REPO.parent / "shared" / "data" / "alpaca_format" / "stanford_alpaca_52k.json"
sys.path.insert(0, str(REPO))
for _key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_UPDATE_CHECK"):
    os.environ.setdefault(_key, "1")
LEVELS = (0.95, 0.90)
VECTORS = "/tmp/alpaca52k_minilm.npy"  # --review-groups saves the 52k's vectors here; bench/quality.py reads them


def rows_at(n: int) -> list[dict]:
    """The Alpaca records, replicated past 52,002 with a small perturbation of each copy's instruction."""
    rows = json.loads(ALPACA.read_text())
    rng, out = random.Random(0), list(rows[:n])
    while len(out) < n:
        out += [{**r, "instruction": perturb(r["instruction"], rng)} for r in rows[:n - len(out)]]
    return out


def perturb(text: str, rng: random.Random) -> str:
    words, op = text.split(), rng.randrange(4)
    if op == 0 and len(words) > 3:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    elif op == 1 and len(words) > 4:
        del words[rng.randrange(len(words))]
    elif op == 2:
        words.insert(0, rng.choice(["Please", "Now,", "Kindly"]))
    else:
        words[-1] = words[-1].rstrip(".?!") + rng.choice([".", "!", "?", ""])
    return " ".join(words)


def pairs_from_neighbours(parts, scores, neighbours, floor: float) -> set[tuple[int, int, float]]:
    import numpy as np

    rows, cols = np.nonzero(scores >= floor)
    i, j = rows, neighbours[rows, cols]
    keep = i != j
    a, b = np.minimum(i, j)[keep], np.maximum(i, j)[keep]
    lowest = np.min([np.einsum("ij,ij->i", p[a], p[b]) for p in parts], axis=0)
    return {(int(x), int(y), float(s)) for x, y, s in zip(a, b, lowest) if s >= floor}


# ---- steps, each in its own process -----------------------------------------------------------

def step_prepare(url: str, n: str, work: str) -> dict:
    from curation.importer import import_files
    from db.engine import open_database, session_for

    path = Path(work) / "records.json"
    path.write_text(json.dumps(rows_at(int(n))))
    start = time.perf_counter()
    with session_for(open_database(url)) as session:
        report = import_files(session, "bench", [path], keep_duplicates=True)
    return {"records": report.imported, "seconds": time.perf_counter() - start}


def step_plain(n: str, work: str) -> dict:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from curation.embeddings import DEFAULT_MODEL, default_device, model_source

    rows = rows_at(int(n))
    start = time.perf_counter()
    model = SentenceTransformer(model_source(DEFAULT_MODEL), device=default_device())
    parts = [model.encode([r[f] for r in rows], batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
             for f in ("instruction", "input")]
    joined = np.hstack(parts) / np.sqrt(2)
    scores, neighbours = np.zeros((len(rows), 11), np.float32), np.zeros((len(rows), 11), np.int64)
    for s in range(0, len(rows), 2048):
        block = joined[s:s + 2048] @ joined.T
        top = np.argpartition(-block, 10, axis=1)[:, :11]
        scores[s:s + 2048], neighbours[s:s + 2048] = np.take_along_axis(block, top, axis=1), top
    pairs = pairs_from_neighbours(parts, scores, neighbours, min(LEVELS))
    seconds = time.perf_counter() - start
    np.save(Path(work) / "plain_pairs.npy", np.array(sorted(pairs)).reshape(-1, 3))
    return {"records": len(rows), "seconds": seconds, "device": default_device()}


def step_ours(url: str, work: str, label: str, mode: str = "auto") -> dict:
    import numpy as np
    from sqlmodel import select

    from curation.services.dedup import duplicate_counts, run_dedup
    from db.dedup_tables import DuplicatePair
    from db.engine import open_database, session_for
    from db.models import Record

    log, said = (Path(work) / f"progress_{label}.log").open("w"), [-1]

    def progress(done: int, of: int) -> None:  # the bar's steps with times, to see a long run's phases afterwards
        if done * 50 // max(of, 1) > said[0]:
            said[0] = done * 50 // max(of, 1)
            log.write(f"{time.perf_counter() - start:8.1f} s  {done:,} of {of:,}\n")
            log.flush()

    with session_for(open_database(url)) as session:
        start = time.perf_counter()
        report = run_dedup(session, dataset="bench", threshold=max(LEVELS), mode=mode, progress=progress)
        seconds = time.perf_counter() - start
        exact_groups, fields, records, run_id = len(report.exact_groups), report.fields, report.records, report.run_id
        del report
        groups = {str(t): duplicate_counts(session, dataset="bench", threshold=t)["groups"] for t in LEVELS}
        # pairs as positions in id order, read in slices so the bench adds little to the peak it prints
        ids = np.fromiter(session.exec(select(Record.id).order_by(Record.id)), np.int64)
        result = session.connection().execute(select(DuplicatePair.record_a, DuplicatePair.record_b,
                                                     DuplicatePair.score).where(DuplicatePair.run_id == run_id))
        slices = [np.array(rows, dtype=np.float64).reshape(-1, 3) for rows in result.partitions(100_000)]
    pairs = np.concatenate(slices) if slices else np.zeros((0, 3))
    pairs[:, 0], pairs[:, 1] = np.searchsorted(ids, pairs[:, 0]), np.searchsorted(ids, pairs[:, 1])
    np.save(Path(work) / f"ours_{label}_pairs.npy", pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))])
    from curation.embeddings import Embedder

    embedder = Embedder()
    return {"records": records, "seconds": seconds, "groups": groups, "exact_groups": exact_groups,
            "run": f"{fields}, model {os.environ.get('EMBED_MODEL') or 'default'}", "mode": report_mode(url, run_id),
            "precision": embedder.precision, "device": embedder.device}


def report_mode(url: str, run_id: int) -> str:
    from db.dedup_tables import DedupRun
    from db.engine import open_database, session_for

    with session_for(open_database(url)) as session:
        return session.get(DedupRun, run_id).mode


def step_recall(url: str) -> dict:
    """The first HNSW search (instructions of every record): build and search time, and its recall@10 against
    exact search for 2,000 sampled records."""
    import numpy as np

    from curation import dedup
    from curation.embeddings import Embedder, embed_cached
    from curation.services.dedup import live_records
    from db.engine import open_database, session_for

    with session_for(open_database(url)) as session:
        records = live_records(session, 1, discarded=True)
        vectors = embed_cached(session, Embedder(), [r["instruction"] for r in records])
    import faiss

    start = time.perf_counter()
    _, approximate = dedup.nearest_neighbours(vectors, 11, exact=False)
    hnsw_seconds = time.perf_counter() - start
    sample = np.random.default_rng(0).choice(len(vectors), min(len(vectors), 2000), replace=False)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    _, exact = flat.search(vectors[sample], 11)  # exact neighbours of 2,000 sampled records
    hits = sum(len(set(a[1:]) & set(e[1:])) for a, e in zip(approximate[sample], exact))
    return {"records": len(vectors), "seconds": hnsw_seconds, "recall_at_10": hits / (10 * len(sample))}


def step_rouge(n: str) -> dict:
    from curation import dedup

    instructions = [r["instruction"] for r in rows_at(int(n))]
    start = time.perf_counter()
    pairs = dedup.lexical_pairs(instructions, 0.7)
    return {"records": len(instructions), "seconds": time.perf_counter() - start,
            "above": sum(s > 0.7 for _, _, s in pairs), "at": sum(s == 0.7 for _, _, s in pairs),
            "highest": max((s for _, _, s in pairs), default=0.0),
            "method": "all pairs" if len(instructions) <= dedup.ALL_PAIRS_LIMIT else "MinHash LSH candidates"}


STEPS = {"prepare": step_prepare, "plain": step_plain, "ours": step_ours, "recall": step_recall, "rouge": step_rouge}


def run_step(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--step", *args], capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        sys.exit(f"step {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def line(label: str, f: dict) -> str:
    return (f"{label:<52} {f['records']:>8,} rec {f['seconds']:8.1f} s {f['records'] / f['seconds']:>8,.0f} rec/s "
            f"peak {f['peak_mb']:6,.0f} MB")


def pair_set(work: Path, name: str, level: float) -> set[tuple[int, int]]:
    import numpy as np

    pairs = np.load(work / f"{name}_pairs.npy")
    pairs = pairs[pairs[:, 2] >= level]
    return set(zip(pairs[:, 0].astype(int).tolist(), pairs[:, 1].astype(int).tolist()))


def run_scale(n: int, work: Path, plain: bool) -> dict:
    url = f"sqlite:///{work}/bench.db"
    perturbed = " (the Alpaca 52k replicated with small perturbations of the instruction)" if n > 52002 else ""
    print(f"\n== {n:,} records{perturbed}", flush=True)
    print(line("import (not part of the search)", run_step("prepare", url, str(n), str(work))), flush=True)
    a = run_step("plain", str(n), str(work)) if plain else None
    if a:
        print(line(f"(a) plain: encode fp32 ({a['device']}) + exact top-10", a), flush=True)
    b = run_step("ours", url, str(work), "cold")
    print(line(f"(b) ours, cold cache ({b['precision']}, {b['device']}, HNSW)", b), flush=True)
    c = run_step("ours", url, str(work), "warm")
    print(line("(c) ours, warm cache", c), flush=True)
    same = all(pair_set(work, "ours_cold", t) == pair_set(work, "ours_warm", t) for t in LEVELS)
    print(f"    warm run gives the same pairs as the cold run: {same}")
    r = run_step("recall", url)
    print(f"    HNSW over every instruction, build + top-10 search: {r['seconds']:.1f} s, recall@10 against exact search "
          f"{r['recall_at_10']:.4f} (2,000 sampled records)")
    print(f"    exact-duplicate groups: {b['exact_groups']}")
    for t in LEVELS:
        ours = pair_set(work, "ours_cold", t)
        text = f"    at {t:.2f}: (b) {len(ours):,} pairs, {b['groups'][str(t)]:,} groups (exact duplicates apart)"
        if a:
            theirs = pair_set(work, "plain", t)
            both = len(ours & theirs)
            text += (f"; (a) {len(theirs):,} pairs; (b) against (a): recall {both / max(len(theirs), 1):.3f}, "
                     f"precision {both / max(len(ours), 1):.3f}")
        print(text, flush=True)
    d = run_step("rouge", str(n))
    print(line(f"(d) exact ROUGE-L 0.7 rule, {d['method']}", d))
    print(f"    pairs above 0.7: {d['above']}, at exactly 0.7: {d['at']}, highest score {d['highest']}", flush=True)
    return {"a": a, "b": b, "c": c, "d": d}


# ---- --review-groups: group sizes, connected components against review groups ---------------------

TOOL_PREAMBLE = "".join(
    f"Tool {name}: {what} Arguments: {args}. Returns {returns}. Call it only when the request needs it; "
    "never invent arguments, and say so when a call fails.\n" for name, what, args, returns in [
        ("web_search", "searches the public web for pages that answer a query.", "query (string), top_k (int)",
         "a list of titles, addresses and snippets"),
        ("calculator", "evaluates an arithmetic expression exactly.", "expression (string)", "a number"),
        ("weather", "gives the forecast for a place and a day.", "place (string), day (ISO date)",
         "temperature, rain and wind"),
        ("translate", "translates a text between two languages.", "text, source, target (language codes)",
         "the translated text"),
        ("calendar", "lists, adds or removes events in the user's calendar.", "action, title, start, end",
         "the events changed"),
        ("python", "runs a short Python program in a sandbox without network.", "code (string)",
         "stdout, stderr and the value of the last line")]) + "You are a helpful assistant with the tools above.\n"


RAW_PREAMBLE_LIMIT = 2000  # preambled texts embed at about 10 a second on 2 CPUs


def size_line(label: str, groups: list[list[int]]) -> str:
    import numpy as np

    sizes = np.array(sorted(len(g) for g in groups) or [0])
    return (f"    {label:<44} groups {len(groups):>6,}  records {int(sizes.sum()):>6,}  max {int(sizes.max()):>5,}  "
            f"p99 {float(np.percentile(sizes, 99)):>6.1f}  median {float(np.median(sizes)):>4.0f}")


def exact_pair_arrays(parts, floor: float, block: int = 1024):
    """(first, second, score): every pair i < j whose every part has cosine >= floor, by blocked matrix products.

    The ground truth for the HNSW search: a pair needs its first part (the instruction) at `floor`, so each
    block of rows meets only the rows after it on that part; scores are the lowest part cosine, by the same
    einsum as dedup.semantic_pair_arrays, so a pair found by both has the same score in both.
    """
    import numpy as np

    n, found = len(parts[0]), []
    for start in range(0, n, block):
        rows, cols = np.nonzero(parts[0][start:start + block] @ parts[0][start:].T >= floor - 1e-6)
        i, j = rows + start, cols + start
        i, j = i[i < j], j[i < j]
        lowest = np.min([np.einsum("ij,ij->i", p[i], p[j]) for p in parts], axis=0) if len(i) else np.zeros(0)
        keep = lowest >= floor
        found.append((i[keep], j[keep], lowest[keep]))
    return tuple(np.concatenate([f[k] for f in found]) for k in range(3))


def search_dataset(session, dataset: str) -> tuple[list[tuple[int, int, float]], object, float]:
    """(the pairs at SEMANTIC_FLOOR and above that services.dedup.run_dedup stores, as positions in id order; its
    report; its seconds). Exact duplicates are not left out: they are counted with the rest in this bench."""
    import numpy as np
    from sqlmodel import select

    from curation.services.dedup import dataset_id_of, run_dedup
    from db.dedup_tables import DuplicatePair
    from db.models import Record

    started = time.perf_counter()
    report = run_dedup(session, dataset=dataset, threshold=min(LEVELS))
    seconds = time.perf_counter() - started
    ids = np.fromiter(session.exec(select(Record.id).where(Record.dataset_id == dataset_id_of(session, dataset))
                                   .order_by(Record.id)), np.int64)
    rows = session.exec(select(DuplicatePair.record_a, DuplicatePair.record_b, DuplicatePair.score)
                        .where(DuplicatePair.run_id == report.run_id)).all()
    first, second = np.searchsorted(ids, [r[0] for r in rows]), np.searchsorted(ids, [r[1] for r in rows])
    pairs = sorted((int(min(a, b)), int(max(a, b)), float(r[2])) for a, b, r in zip(first, second, rows))
    return pairs, report, seconds


def import_rows(session, dataset: str, rows: list[dict], work: Path) -> float:
    """Seconds to import `rows` into `dataset` as the other bench steps do (every row kept, file order = id order)."""
    from curation.importer import import_files

    path = work / f"{dataset}.json"
    path.write_text(json.dumps(rows))
    started = time.perf_counter()
    import_files(session, dataset, [path], keep_duplicates=True)
    return time.perf_counter() - started


def review_report(n: int, vectors_path: Path) -> str:
    """Connected components and review groups at 0.90 and 0.95 on Alpaca and on Alpaca behind a shared preamble.

    The pairs are those the service finds and stores (services.dedup.run_dedup on a temporary SQLite database,
    its vector cache there too), checked against exact all-pairs search over every record's vectors. The
    records' joined instruction+input vectors are saved to `vectors_path` for bench/quality.py.
    """
    import numpy as np
    from sqlmodel import func, select

    from curation import dedup
    from curation.embeddings import DEFAULT_FIELDS, Embedder, cpu_has_fast_bf16
    from curation.services.dedup import dataset_id_of, duplicate_counts, part_vectors
    from curation.services.scores import scored_records
    from db.dedup_tables import EmbeddingVector
    from db.engine import open_database, session_for

    rows = json.loads(ALPACA.read_text())[:n]
    records = [{"id": i, "status": "draft", "output": r["output"], "instruction": r["instruction"],
                "input": r["input"]} for i, r in enumerate(rows)]
    keep_order = [r["id"] for r in sorted(records, key=dedup.keep_preference)]
    embedder = Embedder()
    out: list[str] = []

    def say(text: str) -> None:
        """Print as it goes (the run takes many minutes) and keep the line for the saved report."""
        print(text, flush=True)
        out.append(text)

    first = f" (the first {n:,})" if n < 52002 else ""
    why = "" if embedder.precision != "fp32" or embedder.device != "cpu" else (
        f" (the default here: bf16 only where it is fast, which it {'is' if cpu_has_fast_bf16() else 'is not'} here)")
    say(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start; {len(rows):,} Alpaca "
        f"records{first}; fields instruction+input; {embedder.model_name} {embedder.precision} on "
        f"{embedder.device}{why}; keep order: proposed_keep's rule (all drafts: longest output first). "
        "Exact duplicates are counted with the rest here.")
    work = Path(tempfile.mkdtemp(prefix="review-groups-"))
    engine = open_database(f"sqlite:///{work}/bench.db")
    session = session_for(engine)
    say(f"imported into a temporary SQLite database in {import_rows(session, 'alpaca', rows, work):.1f} s")

    def cached() -> int:
        return session.exec(select(func.count()).select_from(EmbeddingVector)).one()

    found, report, seconds = search_dataset(session, "alpaca")
    say(f"services.dedup.run_dedup, empty vector cache: {seconds:.0f} s, {cached():,} distinct texts embedded "
        f"(every instruction; the inputs of only the records whose instruction has a neighbour at "
        f"{min(LEVELS):.2f}), {len(found):,} pairs at {min(LEVELS):.2f} and above stored")
    started, before = time.perf_counter(), cached()
    stored = scored_records(session, dataset_id_of(session, "alpaca"))
    assert [r["instruction"] for r in stored] == [r["instruction"] for r in rows], "id order is not file order"
    parts = part_vectors(session, stored, DEFAULT_FIELDS, embedder)
    instructions, inputs = np.ascontiguousarray(parts[:, 0]), np.ascontiguousarray(parts[:, 1])
    joined = dedup.joined_vectors([instructions, inputs])  # as services.scores.default_vectors joins them
    del parts, stored
    vectors_path.parent.mkdir(parents=True, exist_ok=True)
    np.save(vectors_path, joined)
    vectors_path.with_suffix(".json").write_text(json.dumps(
        {"records": len(rows), "made_by": "bench/dedup.py --review-groups", "source": str(ALPACA),
         "fields": DEFAULT_FIELDS, "model": embedder.model_name,
         "precision": embedder.precision, "device": embedder.device}))
    say(f"every other input through the same cache (services.dedup.part_vectors, {cached() - before:,} more distinct "
        f"texts): {time.perf_counter() - started:.0f} s; joined unit vectors ({joined.shape[0]:,} x {joined.shape[1]}, "
        f"as services.scores.default_vectors computes them) saved to {vectors_path}")
    del joined
    started = time.perf_counter()
    exact = exact_pair_arrays([instructions, inputs], min(LEVELS))
    say(f"exact all-pairs search over the same vectors (the ground truth): {time.perf_counter() - started:.0f} s")

    def at(pairs, level):
        return [p for p in pairs if p[2] >= level]

    exact = list(zip(exact[0].tolist(), exact[1].tolist(), exact[2].tolist()))
    for level in sorted(LEVELS):
        theirs, ours = {p[:2] for p in at(exact, level)}, {p[:2] for p in at(found, level)}
        say(f"  at {level:.2f}: the service found {len(ours & theirs):,} of the {len(theirs):,} pairs exact search "
            f"finds ({len(ours - theirs)} it found that exact search does not)")

    def compare(title, pairs_by_level):
        say(title)
        for level in sorted(LEVELS):
            pairs = pairs_by_level(level)
            say(f"  at {level:.2f}: {len(pairs):,} pairs")
            say(size_line("connected components (the old grouping)", dedup.connected_groups(pairs)))
            say(size_line("review groups (around a kept record)", dedup.review_groups(pairs, keep_order)))

    compare("\n== Alpaca (the pairs the service stored)", lambda level: at(found, level))
    service = {(g, level): duplicate_counts(session, dataset="alpaca", threshold=level, grouping=g)["groups"]
               for g in ("connected", "review") for level in LEVELS}
    mine = {("connected", level): len(dedup.connected_groups(at(found, level))) for level in LEVELS}
    mine.update({("review", level): len(dedup.review_groups(at(found, level), keep_order)) for level in LEVELS})
    say(f"  the service's own duplicate_counts give the same group counts: {service == mine}")
    for level in sorted(LEVELS, reverse=True):
        groups = dedup.review_groups(at(found, level), keep_order)
        for label, pairs in (("the service's", at(found, level)), ("exact search's", at(exact, level))):
            say("  " + pair_recall(level, label, pairs, groups))

    m = min(n, RAW_PREAMBLE_LIMIT)
    preambled = [{**r, "instruction": TOOL_PREAMBLE + r["instruction"]} for r in rows]
    say(f"\n== Alpaca behind a shared preamble: every instruction starts with the same {len(TOOL_PREAMBLE):,}-"
        "character tool description (six tools and an assistant line, written for this bench)")
    started = time.perf_counter()
    raw = embedder.encode([r["instruction"] for r in preambled[:m]])
    seconds = time.perf_counter() - started
    say(f"embedded {m:,} preambled instructions in {seconds:.0f} s" + (
        f" (each is cut at the model's 256 tokens, so they embed slowly: this arm runs on the first {m:,} records "
        f"only; all {n:,} would take about {seconds * n / m / 3600:.1f} h here)" if m < n else ""))
    compare(f"-- compared as they are (preamble left in), first {m:,} records",
            lambda level: [p for p in zip(*(a.tolist() for a in dedup.semantic_pair_arrays([raw, inputs[:m]], level)))])
    del raw
    say(f"imported as a second dataset in {import_rows(session, 'preambled', preambled, work):.1f} s")
    stripped, report, seconds = search_dataset(session, "preambled")
    say(f"-- compared as the service compares them (run_dedup on all {n:,}, {seconds:.0f} s, vectors from the cache): "
        + " ".join(report.left_out))
    same = {p[:2] for p in stripped} == {p[:2] for p in found}
    say(f"   its pairs at {min(LEVELS):.2f} and above are the Alpaca pairs: {same} (so the Alpaca figures above apply)")
    session.close()
    engine.dispose()
    for path in work.iterdir():
        path.unlink()
    work.rmdir()
    return "\n".join(out)


def pair_recall(level: float, label: str, pairs, groups) -> str:
    """The line saying whether every pair is inside one review group or has a record proposed for removal."""
    group_of = {r: g for g, members in enumerate(groups) for r in members}
    kept = {g[0] for g in groups}
    together = sum(group_of.get(a, -1) == group_of.get(b, -2) for a, b, _ in pairs)
    covered = sum(group_of.get(a, -1) == group_of.get(b, -2) or a not in kept or b not in kept for a, b, _ in pairs)
    return (f"pair recall at {level:.2f} ({label} pairs): {covered:,} of {len(pairs):,} are grouped together or have "
            f"a record proposed for removal ({together:,} grouped together); "
            f"{sum(a in kept and b in kept for a, b, _ in pairs)} pairs of two kept records")


# ---- --cascade: the cascade against the reference, SemHash as the peer, then a million records (issue 15) ------

PLANTED_SHARE = 0.05  # past the 52k, this share of the new records are light rewordings of an earlier record
SAMPLE = 2000  # pairs re-scored by the sentence model for recall and precision at scales (a) cannot reach


def rows_mixed(n: int) -> tuple[list[dict], list[tuple[int, int]]]:
    """(the Alpaca records, and past 52,002 new ones made from them; the planted near-duplicate pairs).

    Each new record either joins two random Alpaca instructions into one ("A B", with A's input, both outputs),
    or, for PLANTED_SHARE of them, rewords an earlier record (see perturb): the planted near-duplicates, whose
    positions are returned so recall can be measured where the reference cannot run.
    """
    rows = json.loads(ALPACA.read_text())
    rng, out, planted = random.Random(0), list(rows[:n]), []
    while len(out) < n:
        if rng.random() < PLANTED_SHARE:
            original = rng.randrange(len(out))
            planted.append((original, len(out)))
            out.append({**out[original], "instruction": perturb(out[original]["instruction"], rng)})
        else:
            a, b = rng.choice(rows), rng.choice(rows)
            out.append({"instruction": a["instruction"].rstrip() + " " + b["instruction"], "input": a["input"],
                        "output": a["output"] + "\n\n" + b["output"]})
    return out, planted


def step_prepare_mixed(url: str, n: str, work: str) -> dict:
    import numpy as np

    from curation.importer import import_files
    from db.engine import open_database, session_for

    rows, planted = rows_mixed(int(n))
    path = Path(work) / "records.json"
    path.write_text(json.dumps(rows))
    np.save(Path(work) / "planted.npy", np.array(planted, dtype=np.int64).reshape(-1, 2))
    del rows
    start = time.perf_counter()
    with session_for(open_database(url)) as session:
        report = import_files(session, "bench", [path], keep_duplicates=True)
    path.unlink()
    return {"records": report.imported, "seconds": time.perf_counter() - start, "planted": len(planted)}


def step_distill(folder: str) -> dict:
    """The static model distilled from MiniLM into an empty folder: a once-per-machine cost, timed on its own."""
    os.environ["STATIC_MODELS_DIR"] = folder
    from curation.static_embeddings import distilled_model

    start = time.perf_counter()
    model = distilled_model()
    return {"records": len(model.tokens), "seconds": time.perf_counter() - start}


def step_semhash(n: str, work: str) -> dict:
    """SemHash 0.5 with the same static model: its ANN index (usearch) and its threshold query over the records'
    instruction and input columns, every neighbour pair at 0.90 kept (not only those its greedy pass removes)."""
    import numpy as np
    from semhash import SemHash

    from curation.static_embeddings import distilled_model

    model = distilled_model()
    rows = rows_at(int(n))
    records = [{"id": str(i), "instruction": r["instruction"], "input": r["input"]} for i, r in enumerate(rows)]
    start = time.perf_counter()
    semhash = SemHash.from_records(records, columns=["instruction", "input"], model=model)
    neighbours = semhash.index.query_threshold(semhash.index.vectors, threshold=min(LEVELS))
    seconds = time.perf_counter() - start
    groups = semhash.index.items  # exact duplicates share one row of the index
    pairs = {}
    for row, (found, scores) in enumerate(neighbours):
        for other, score in zip(found, scores):
            if other != row:
                for a in groups[row]:
                    for b in groups[other]:
                        key = (min(int(a["id"]), int(b["id"])), max(int(a["id"]), int(b["id"])))
                        pairs[key] = max(pairs.get(key, 0.0), float(score))
        for a in groups[row]:
            for b in groups[row]:
                if int(a["id"]) < int(b["id"]):
                    pairs[(int(a["id"]), int(b["id"]))] = 1.0
    np.save(Path(work) / "semhash_pairs.npy", np.array([(a, b, s) for (a, b), s in sorted(pairs.items())]).reshape(-1, 3))
    return {"records": len(rows), "seconds": seconds}


def step_sampled_recall(url: str, work: str, label: str) -> dict:
    """Recall on SAMPLE planted pairs and precision on SAMPLE reported pairs, each re-scored by MiniLM fp32."""
    import numpy as np

    from curation.embeddings import Embedder
    from curation.services.dedup import live_records
    from db.engine import open_database, session_for

    rng = np.random.default_rng(0)
    planted = np.load(Path(work) / "planted.npy")
    found = np.load(Path(work) / f"ours_{label}_pairs.npy")
    planted = planted[rng.choice(len(planted), min(SAMPLE, len(planted)), replace=False)]
    reported = found[rng.choice(len(found), min(SAMPLE, len(found)), replace=False)][:, :2].astype(np.int64)
    with session_for(open_database(url)) as session:
        records = live_records(session, 1, discarded=True)
    embedder, start = Embedder(precision="fp32"), time.perf_counter()

    def scores(pairs: np.ndarray) -> np.ndarray:
        rows = sorted({int(x) for x in pairs.ravel()})
        at = {r: k for k, r in enumerate(rows)}
        parts = [embedder.encode([records[r][f] for r in rows]) for f in ("instruction", "input")]
        a, b = [at[int(x)] for x in pairs[:, 0]], [at[int(x)] for x in pairs[:, 1]]
        return np.min([np.einsum("ij,ij->i", p[a], p[b]) for p in parts], axis=0)

    planted_scores, reported_scores = scores(planted), scores(reported)
    keys = {(int(a), int(b)): float(s) for a, b, s in found}
    out = {"records": len(records), "seconds": time.perf_counter() - start}
    for level in LEVELS:
        wanted = [(int(min(a, b)), int(max(a, b))) for (a, b), s in zip(planted, planted_scores) if s >= level]
        out[f"recall_{level}"] = sum(keys.get(p, 0.0) >= level for p in wanted) / max(len(wanted), 1)
        out[f"planted_{level}"] = len(wanted)
        at_level = [(int(a), int(b)) for a, b in reported if keys[(int(a), int(b))] >= level]
        sure = {(int(a), int(b)) for (a, b), s in zip(reported, reported_scores) if s >= level - 1e-5}
        out[f"precision_{level}"] = sum(p in sure for p in at_level) / max(len(at_level), 1)
    return out


def step_distributed(url: str, work: str, tasks: str, workers: str) -> dict:
    """The distributed search (datatrove's local executor, `tasks` shards, `workers` at once) started and followed as
    the CLI does, its pairs read back into a dedup run; timed from the start to the pairs stored."""
    import numpy as np
    from sqlmodel import select

    from curation.services.distributed_search import search_status, start_distributed_search
    from db.dedup_tables import DuplicatePair
    from db.engine import open_database, session_for
    from db.models import Record

    with session_for(open_database(url)) as session:
        start = time.perf_counter()
        search = start_distributed_search(session, None, dataset="bench", threshold=max(LEVELS), tasks=int(tasks),
                                          workers=int(workers), work_root=Path(work) / "jobs")
        while (status := search_status(session, search.id)).status not in ("completed", "failed", "cancelled"):
            time.sleep(2)
        seconds = time.perf_counter() - start
        if status.status != "completed":
            raise SystemExit(status.sentence)
        ids = np.fromiter(session.exec(select(Record.id).order_by(Record.id)), np.int64)
        pairs = np.array(session.exec(select(DuplicatePair.record_a, DuplicatePair.record_b, DuplicatePair.score)
                                      .where(DuplicatePair.run_id == status.run_id)).all(), dtype=np.float64)
    pairs = pairs.reshape(-1, 3)
    pairs[:, 0], pairs[:, 1] = np.searchsorted(ids, pairs[:, 0]), np.searchsorted(ids, pairs[:, 1])
    np.save(Path(work) / f"distributed_{tasks}_{workers}_pairs.npy", pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))])
    return {"records": len(ids), "seconds": seconds, "pairs": len(pairs)}


STEPS.update({"distributed": step_distributed, "prepare_mixed": step_prepare_mixed, "distill": step_distill, "semhash": step_semhash,
              "sampled_recall": step_sampled_recall})


def against(work: Path, name: str, reference: str = "plain") -> str:
    """Pair recall and precision of `name`'s pairs against `reference`'s at each level, in one line."""
    out = []
    for level in LEVELS:
        ours, theirs = pair_set(work, name, level), pair_set(work, reference, level)
        both = len(ours & theirs)
        out.append(f"at {level:.2f}: {len(ours):,} pairs, recall {both / max(len(theirs), 1):.3f}, "
                   f"precision {both / max(len(ours), 1):.3f}")
    return "; ".join(out)


def cascade_report(base: int, scale: int, work: Path, distributed: bool = False) -> None:
    """Issue 15's figures, each step in its own process: (a) plain, (b) the cascade, (c) the reference pipeline and
    SemHash over the Alpaca records; then `scale` records, (b) cold and warm."""
    static_dir = work / "static-models"
    os.environ["STATIC_MODELS_DIR"] = str(static_dir)  # the steps inherit it: one distilled model for all
    print(line("distill the static model from MiniLM (once per machine)", run_step("distill", str(static_dir))),
          flush=True)
    if base:
        base_report(base, work)
    if scale:
        scale_report(scale, work, distributed)


def base_report(base: int, work: Path) -> None:
    """(a) plain, (b) the cascade cold and warm, (c) the reference pipeline and SemHash over `base` Alpaca records."""
    (work / "base").mkdir()
    url_b, url_c = f"sqlite:///{work}/base/cascade.db", f"sqlite:///{work}/base/reference.db"
    print(f"\n== {base:,} Alpaca records", flush=True)
    print(line("import (not part of the search)", run_step("prepare", url_b, str(base), str(work / "base"))))
    run_step("prepare", url_c, str(base), str(work / "base"))
    a = run_step("plain", str(base), str(work / "base"))
    print(line(f"(a) plain: sentence-transformers fp32 ({a['device']}) + exact top-10", a), flush=True)
    b = run_step("ours", url_b, str(work / "base"), "cascade_cold", "cascade")
    print(line(f"(b) the cascade, cold ({b['precision']}, {b['device']})", b), flush=True)
    print("    against (a): " + against(work / "base", "ours_cascade_cold"), flush=True)
    bw = run_step("ours", url_b, str(work / "base"), "cascade_warm", "cascade")
    print(line("(b) the cascade, warm vector cache", bw), flush=True)
    c = run_step("ours", url_c, str(work / "base"), "reference_cold", "reference")
    print(line(f"(c) the reference pipeline (before this issue), cold ({c['precision']}, {c['device']})", c), flush=True)
    print("    against (a): " + against(work / "base", "ours_reference_cold"), flush=True)
    try:
        sh = run_step("semhash", str(base), str(work / "base"))
        print(line("SemHash 0.5, the same static model (usearch index)", sh), flush=True)
        print("    against (a): " + against(work / "base", "semhash"), flush=True)
    except SystemExit as exc:  # semhash is a bench-only package: pip install semhash==0.5.0
        print(f"SemHash: not run ({str(exc).splitlines()[-1]})")
    print(f"\ntargets at {base:,}: (b) {a['seconds'] / b['seconds']:.2f}x faster than (a) (target >= 5x, "
          "pair recall and precision >= 0.95 at both levels)", flush=True)


def scale_report(scale: int, work: Path, distributed: bool = False) -> None:
    """`scale` mixed records (rows_mixed): (b) cold, then warm, then recall and precision on samples."""
    (work / "scale").mkdir()
    url = f"sqlite:///{work}/scale/bench.db"
    print(f"\n== {scale:,} records: the Alpaca 52k, then new records that join two random Alpaca instructions "
          f"(with the first one's input), {PLANTED_SHARE:.0%} of them instead a light rewording of an earlier record "
          "(planted near-duplicates)", flush=True)
    prep = run_step("prepare_mixed", url, str(scale), str(work / "scale"))
    print(line(f"import (not part of the search; {prep['planted']:,} planted)", prep), flush=True)
    cold = run_step("ours", url, str(work / "scale"), "cascade_cold", "cascade")
    print(line(f"(b) the cascade, cold ({cold['precision']}, {cold['device']})", cold), flush=True)
    warm = run_step("ours", url, str(work / "scale"), "cascade_warm", "cascade")
    print(line("(b) the cascade, warm vector cache", warm), flush=True)
    sampled = run_step("sampled_recall", url, str(work / "scale"), "cascade_cold")
    for level in LEVELS:
        print(f"    at {level:.2f}: recall {sampled[f'recall_{level}']:.3f} on the "
              f"{sampled[f'planted_{level}']:,} of {SAMPLE:,} sampled planted pairs that MiniLM fp32 scores at "
              f"{level:.2f} or more; precision {sampled[f'precision_{level}']:.3f} on {SAMPLE:,} sampled "
              "reported pairs re-scored by MiniLM fp32", flush=True)
    if distributed:
        for tasks, workers in ((2, 1), (2, 2)):
            d = run_step("distributed", url, str(work / "scale"), str(tasks), str(workers))
            print(line(f"distributed (datatrove local, {tasks} tasks, {workers} at once; peak: the studio's side)",
                       d), flush=True)
            print("    against the in-process cascade (cold): " + against(
                work / "scale", f"distributed_{tasks}_{workers}", "ours_cascade_cold"), flush=True)
    print(f"\ntargets at {scale:,}: cold {cold['seconds'] / 60:.1f} min (target < 30 min) at peak "
          f"{cold['peak_mb'] / 1024:.1f} GB (target within 8 GB); warm {warm['seconds']:.0f} s (target < 60 s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", type=int, default=52002, help="the first run's record count (fewer: a smoke test)")
    parser.add_argument("--scale", type=int, default=500_000, help="the larger run's record count (0: skip it)")
    parser.add_argument("--plain-at-scale", action="store_true", help="also run (a) at the larger scale (slow)")
    parser.add_argument("--step", nargs="+")
    parser.add_argument("--cascade", action="store_true",
                        help="issue 15: the cascade against plain search, the reference pipeline and SemHash at --base, "
                        "then at --scale (default here 1,000,000) cold and warm")
    parser.add_argument("--work", metavar="DIR", help="with --cascade: a new folder to work in and keep (default: "
                        "a temporary one); --base 0 runs only the --scale part")
    parser.add_argument("--distributed", action="store_true", help="with --cascade: also the distributed search "
                        "at --scale, 2 tasks run one and two at a time")
    parser.add_argument("--review-groups", type=int, nargs="?", const=52002, metavar="N",
                        help="group sizes, connected against review groups, on the first N Alpaca records and on them "
                        "behind a shared preamble; saved to bench/results/review_groups.txt")
    parser.add_argument("--vectors", default=VECTORS, metavar="PATH",
                        help="with --review-groups: where the records' joined instruction+input vectors are saved "
                        f"(.npy, with a .json beside it saying how they were made; default {VECTORS})")
    args = parser.parse_args()
    if args.review_groups:
        report = review_report(args.review_groups, Path(args.vectors))
        (REPO / "bench" / "results" / "review_groups.txt").write_text(report + "\n")
        return
    if args.step:
        figures = STEPS[args.step[0]](*args.step[1:])
        figures["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(figures))
        return
    if not ALPACA.is_file():
        sys.exit("../shared/data is absent")
    import torch

    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")
    if args.cascade:
        scale = 1_000_000 if args.scale == 500_000 else args.scale
        if args.work:  # kept afterwards: a long run's databases and pairs stay there to look at
            Path(args.work).mkdir(parents=True, exist_ok=False)
            cascade_report(args.base, scale, Path(args.work), args.distributed)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                cascade_report(args.base, scale, Path(tmp), args.distributed)
        return
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "base").mkdir()
        base = run_scale(args.base, Path(tmp) / "base", plain=True)
        a, b, c, d = base["a"], base["b"], base["c"], base["d"]
        print(f"\ntargets at {args.base:,}: (b) {a['seconds'] / b['seconds']:.2f}x faster than (a) (target >= 2x); "
              f"(c) {c['seconds']:.1f} s (target < 10 s); (d) {d['seconds']:.1f} s (target < 60 s)")
        if args.scale:
            (Path(tmp) / "scale").mkdir()
            big = run_scale(args.scale, Path(tmp) / "scale", plain=args.plain_at_scale)
            peak = max(v["peak_mb"] for v in big.values() if v)
            print(f"\ntarget at {args.scale:,}: peak memory {peak / 1024:.1f} GB (target within 8 GB)")


if __name__ == "__main__":
    main()
