"""Bulk review at size: approve 10,000 records that match a filter in one action, check that every one has its
Revision, then undo the action as a whole (issue 16's bulk target: under 10 s on this machine).

    python bench/bulk_review.py [--records 10000] [--db sqlite|postgres|both]

Builds a fresh database of --records submitted records (plus 1,000 drafts the filter leaves out) from the Stanford
Alpaca instructions of ../shared/data when present (else numbered questions, said so), then times what the Browse
panel's Apply does: the filter's ids (browse.matching_ids) and bulk_review(approve); then undo_bulk_action.
PostgreSQL runs against 127.0.0.1:5432/test (a scratch schema, dropped after).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))


def instructions(n: int) -> tuple[list[str], str]:
    alpaca = SHARED / "alpaca_format" / "stanford_alpaca_52k.json"
    alpaca = alpaca if alpaca.exists() else None
    if alpaca is None:
        return [f"Question number {i}?" for i in range(n)], "numbered questions (../shared/data absent)"
    rows = json.loads(alpaca.read_text(encoding="utf-8"))
    texts = [r["instruction"] for r in rows]
    return [texts[i % len(texts)] + (f" (copy {i // len(texts)})" if i >= len(texts) else "") for i in range(n)], \
        f"Stanford Alpaca instructions from {alpaca.relative_to(SHARED.parent)}"


def run(url: str, n: int) -> dict:
    from sqlalchemy import func, select

    from curation.records import RecordDraft
    from curation.services.browse import BrowseQuery, matching_ids
    from curation.services.bulk_review import bulk_review, undo_bulk_action
    from curation.services.permissions import Actor
    from db import repo
    from db.engine import open_database, session_for
    from db.models import Record, RecordStatus, Revision, Role

    engine = open_database(url)
    texts, _ = instructions(n + 1000)
    with session_for(engine) as session:
        dataset_id = repo.get_or_create_dataset(session, "bulk").id
        repo.insert_records(session, dataset_id, [RecordDraft(instruction=t, outputs=["An answer."]) for t in texts[:n]],
                            by="ann", reason="created", status=RecordStatus.submitted)
        repo.insert_records(session, dataset_id, [RecordDraft(instruction=t, outputs=["An answer."]) for t in texts[n:]],
                            by="ann", reason="created")
        session.commit()
    curator = Actor("cura", Role.curator)
    with session_for(engine) as session:
        started = time.perf_counter()
        ids = matching_ids(session, BrowseQuery(dataset="bulk", status="submitted"))
        result = bulk_review(session, curator, record_ids=ids, action="approve", dataset="bulk")
        session.commit()
        approve_s = time.perf_counter() - started
    with session_for(engine) as session:
        approved = session.execute(select(func.count()).select_from(Record).where(
            Record.status == RecordStatus.approved)).scalar_one()
        revisions = session.execute(select(func.count()).select_from(Revision).where(
            Revision.entity_type == "record", Revision.version == 2)).scalar_one()
    with session_for(engine) as session:
        started = time.perf_counter()
        undone = undo_bulk_action(session, curator, result.action_id)
        session.commit()
        undo_s = time.perf_counter() - started
    with session_for(engine) as session:
        back = session.execute(select(func.count()).select_from(Record).where(
            Record.status == RecordStatus.submitted)).scalar_one()
        undo_revisions = session.execute(select(func.count()).select_from(Revision).where(
            Revision.entity_type == "record", Revision.version == 3)).scalar_one()
    engine.dispose()
    return {"matched": len(ids), "changed": result.changed, "approve_s": approve_s, "approved": approved,
            "revisions": revisions, "undo_s": undo_s, "undone": undone.changed, "back": back,
            "undo_revisions": undo_revisions}


def postgres_url() -> tuple[str, callable]:
    import uuid

    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    return f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}", drop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    args = parser.parse_args()
    print(f"records: {args.records:,} submitted + 1,000 drafts; {instructions(1)[1]}")
    targets = []
    if args.db in ("sqlite", "both"):
        folder = tempfile.mkdtemp(prefix="bench-bulk-")
        targets.append(("SQLite", f"sqlite:///{folder}/bulk.db", lambda: None))
    if args.db in ("postgres", "both"):
        url, drop = postgres_url()
        targets.append(("PostgreSQL", url, drop))
    for name, url, cleanup in targets:
        try:
            f = run(url, args.records)
        finally:
            cleanup()
        ok = f["approved"] == f["revisions"] == f["changed"] == args.records
        print(f"{name}: bulk approve of {f['changed']:,} matching records in {f['approve_s']:.2f} s "
              f"(target < 10 s: {'met' if f['approve_s'] < 10 else 'MISSED'}); "
              f"{f['revisions']:,} Revisions at version 2 ({'one each' if ok else 'NOT one each'}); "
              f"undo in {f['undo_s']:.2f} s, {f['undone']:,} back to submitted ({f['back']:,}), "
              f"{f['undo_revisions']:,} undo Revisions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
