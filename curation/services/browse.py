"""The browse table: one page of records or tasks, filtered and sorted in the database."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, bindparam, cast, func, or_, select
from sqlmodel import Session

from curation.records import null_byte_field, null_byte_reason
from curation.services.annotation import InvalidInput
from db.flag_tables import RecordFlag
from db.models import Dataset, Record, RecordStatus, Task
from db.review_tables import RecordTag

PAGE_SIZE = 50
ANY_FLAG = "any"  # BrowseQuery.flag: records that fail at least one quality check
# BrowseQuery.written_by, as the filter names them. "people" and "imported" hold no machine-drafted text, as the
# overview and the dataset card count them (curation.stats.written_by_kind).
WRITTEN_BY = {"people": "people", "machine": "machine-drafted (any)", "unreviewed": "machine-drafted, unreviewed",
              "edited": "machine-drafted, edited", "imported": "imported"}
# The record table's columns; the last one (the time of the last update) is a search by meaning's score.
RECORD_COLUMNS = ["ID", "Instruction", "Output", "Status", "Category", "Source", "Author", "Tags", "Updated"]
SORTS = {
    "Last updated": ("updated_at", True),
    "Oldest updated": ("updated_at", False),
    "Newest": ("id", True),
    "Oldest": ("id", False),
    "Status": ("status", False),
    "Author": ("created_by", False),
}


@dataclass
class BrowseQuery:
    kind: str = "records"  # "records" | "tasks"
    dataset: str | None = None
    status: str | None = None
    category: str | None = None
    author: str | None = None
    text: str | None = None
    flag: str | None = None  # a check name of curation.quality.records.CHECKS, or ANY_FLAG
    written_by: str | None = None  # a key of WRITTEN_BY
    sort: str = "Last updated"
    page: int = 1
    page_size: int = PAGE_SIZE
    # Records ranked by meaning ((id, score), best first, from the dataset's meaning index): they replace the word
    # search and the sort, the other filters still apply, and a Meaning column (in Updated's place) shows each score.
    nearest: list[tuple[int, float]] | None = None
    tag: str | None = None  # records that carry this tag
    ids: list[int] | None = None  # only these records (a lasso on the map): the other filters still apply


@dataclass
class BrowsePage:
    columns: list[str]
    rows: list[list[Any]]
    total: int
    page: int
    pages: int
    asked: int = 1  # the page asked for: past the last one, `page` is the last page instead

    @property
    def past_end(self) -> bool:
        """The page asked for does not exist (there are fewer pages), so the last page was given."""
        return self.asked > self.pages


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _short(text: str | None, limit: int = 140) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _contains(session: Session, column, pattern: str):
    # SQLite's LIKE already ignores ASCII case (and lower() would defeat it); PostgreSQL needs ILIKE.
    if session.get_bind().dialect.name == "sqlite":
        return column.like(pattern, escape="\\")
    return column.ilike(pattern, escape="\\")


def browse(session: Session, query: BrowseQuery) -> BrowsePage:
    """The page `query.page` (from 1) of the items that match, and how many match in all (an exact count).

    A page past the last gives the last page (`asked` says which was asked for). Without a text search the
    page's ids come from an index walk (ix_record_browse_*), then only those rows are read, so a page costs
    the same at 100 records or 100,000. A text search scans the filtered rows once to count and once more for
    the page: deep pages of a search cost a scan, as the search itself does.
    """
    model = Task if query.kind == "tasks" else Record
    filters = _filters(session, query, model)
    if query.nearest is not None and model is Record:
        return _by_meaning(session, query, filters)
    if query.text and query.text.strip():
        filters.append(_text_filter(session, query.text, model))
    column, descending = SORTS.get(query.sort, SORTS["Last updated"])
    order = getattr(model, column)
    ordering = [order.desc() if descending else order.asc()]
    if column != "id":
        ordering.append(model.id.desc() if descending else model.id.asc())
    total = session.execute(select(func.count()).select_from(model).where(*filters)).scalar_one()
    pages = max(1, -(-total // query.page_size))
    asked = max(1, int(query.page or 1))
    page = min(asked, pages)
    ids = []
    if total:
        ids = list(session.execute(select(model.id).where(*filters).order_by(*ordering)
                                   .offset((page - 1) * query.page_size).limit(query.page_size)).scalars())
    position = {item_id: n for n, item_id in enumerate(ids)}
    if model is Task:
        rows = session.execute(select(Task.id, Task.name, Task.definition, Task.status, Task.categories,
                                      Task.created_by, Task.updated_at).where(Task.id.in_(ids))).all()
        rows.sort(key=lambda r: position[r.id])
        return BrowsePage(
            columns=["ID", "Task", "Definition", "Status", "Categories", "Author", "Updated"],
            rows=[[r.id, r.name, _short(r.definition, 100), _status(r.status), ", ".join(r.categories or []),
                   r.created_by or "", _when(r.updated_at)] for r in rows],
            total=total, page=page, pages=pages, asked=asked)
    rows = _record_rows(session, ids)
    tags = tags_of(session, ids)
    return BrowsePage(
        columns=RECORD_COLUMNS,
        rows=[[r.id, _short(r.instruction) + (f" · {_short(r.input, 60)}" if r.input else ""),
               _short((r.outputs or [""])[0], 100), _status(r.status), r.category or "", source_of(r),
               r.created_by or "", ", ".join(tags.get(r.id, [])), _when(r.updated_at)] for r in rows],
        total=total, page=page, pages=pages, asked=asked)


def matching_ids(session: Session, query: BrowseQuery) -> list[int]:
    """The ids of every record that matches the query's filters (all pages), in id order: what a bulk action on
    "all matching" applies to."""
    filters = _filters(session, query, Record)
    if query.nearest is not None:
        ranked = [item_id for item_id, _ in query.nearest]
        matching: set[int] = set()
        for start in range(0, len(ranked), 900):
            matching.update(session.execute(select(Record.id).where(
                Record.id.in_(ranked[start:start + 900]), *filters)).scalars())
        return sorted(matching)
    if query.text and query.text.strip():
        filters.append(_text_filter(session, query.text, Record))
    return list(session.execute(select(Record.id).where(*filters).order_by(Record.id)).scalars())


def _text_filter(session: Session, text: str, model):
    pattern = _like(text.strip())
    fields = [Task.name, Task.definition] if model is Task else [Record.instruction, Record.input,
                                                                   cast(Record.outputs, String)]
    return or_(*[_contains(session, f, pattern) for f in fields])


def _filters(session: Session, query: BrowseQuery, model) -> list:
    """The WHERE conditions of every filter but the text search."""
    if field_name := null_byte_field({"search text": query.text, "dataset": query.dataset, "category": query.category,
                                      "author": query.author, "status": query.status, "flag": query.flag,
                                      "tag": query.tag}):
        raise InvalidInput(f"{null_byte_reason(field_name)}: no record can match it")
    filters = []
    if query.dataset:
        dataset_id = session.execute(select(Dataset.id).where(Dataset.name == query.dataset)).scalar()
        filters.append(model.dataset_id == (dataset_id if dataset_id is not None else -1))
    if query.status:
        filters.append(model.status == RecordStatus(query.status))
    if query.author:
        filters.append(model.created_by == query.author)
    if query.category:
        if model is Task:
            filters.append(_contains(session, cast(Task.categories, String), _like(f'"{query.category}"')))
        else:
            filters.append(Record.category == query.category)
    if query.flag:
        filters.append(_flagged(model, query.flag))
    if query.written_by:
        filters.append(_written_by(model, query.written_by))
    if query.tag and query.tag.strip():
        tagged = select(RecordTag.record_id).where(RecordTag.tag == query.tag.strip())
        filters.append(model.id.in_(tagged) if model is Record else
                       Task.id.in_(select(Record.task_id).where(Record.id.in_(tagged))))
    if query.ids is not None:
        # written into the SQL as numbers: a lasso may hold more ids than SQLite takes bound parameters
        ids = bindparam("only_ids", [int(i) for i in query.ids], expanding=True, literal_execute=True)
        filters.append(Record.id.in_(ids) if model is Record else
                       Task.id.in_(select(Record.task_id).where(Record.id.in_(ids))))
    return filters


def tags_of(session: Session, ids: list[int]) -> dict[int, list[str]]:
    """{record id: its tags, sorted} for the records `ids` (a page)."""
    found: dict[int, list[str]] = {}
    for record_id, tag in session.execute(select(RecordTag.record_id, RecordTag.tag)
                                          .where(RecordTag.record_id.in_(ids)).order_by(RecordTag.tag)):
        found.setdefault(record_id, []).append(tag)
    return found


def _record_rows(session: Session, ids: list[int]) -> list:
    """The browse table's columns of the records `ids`, in that order."""
    position = {item_id: n for n, item_id in enumerate(ids)}
    rows = session.execute(select(Record.id, Record.instruction, Record.input, Record.outputs, Record.status,
                                  Record.category, Record.created_by, Record.updated_at, Record.origin,
                                  Record.machine_draft, Record.provenance, Record.source_file)
                           .where(Record.id.in_(ids))).all()
    rows.sort(key=lambda r: position[r.id])
    return rows


def _by_meaning(session: Session, query: BrowseQuery, filters: list) -> BrowsePage:
    """The page of query.nearest's records that pass the filters, in their order, with their scores."""
    score = dict(query.nearest)
    matching: set[int] = set()
    ids = list(score)
    for start in range(0, len(ids), 900):  # under SQLite's bound-parameter limit
        matching.update(session.execute(select(Record.id).where(
            Record.id.in_(ids[start:start + 900]), *filters)).scalars())
    ranked = [i for i in ids if i in matching]
    total = len(ranked)
    pages = max(1, -(-total // query.page_size))
    asked = max(1, int(query.page or 1))
    page = min(asked, pages)
    shown = ranked[(page - 1) * query.page_size:page * query.page_size]
    rows = _record_rows(session, shown)
    tags = tags_of(session, shown)
    return BrowsePage(
        # the columns of a word search, the score where the time of the last update was (the table keeps its shape)
        columns=[*RECORD_COLUMNS[:-1], "Meaning"],
        rows=[[r.id, _short(r.instruction) + (f" · {_short(r.input, 60)}" if r.input else ""),
               _short((r.outputs or [""])[0], 100), _status(r.status), r.category or "", source_of(r),
               r.created_by or "", ", ".join(tags.get(r.id, [])), f"{score[r.id]:.2f}"] for r in rows],
        total=total, page=page, pages=pages, asked=asked)


def source_of(row) -> str:
    """Where a record came from, in a few words: the template or job that made it, the file, and any model text."""
    provenance = row.provenance or {}
    if row.origin == "template":
        text = f"template “{(provenance.get('template') or {}).get('name', '?')}”"
    elif row.origin == "generated":
        text = f"generated (job {provenance['job']})" if provenance.get("job") else "generated"
    elif row.origin == "imported":
        text = f"imported ({row.source_file})" if row.source_file else "imported"
    else:
        text = ""
    if row.machine_draft:
        text += (" · " if text else "") + f"machine-drafted, {row.machine_draft}"
    return text


def _flagged(model, flag: str):
    """Records that fail the check `flag` (any check: ANY_FLAG); for tasks, those with such a live instance."""
    flagged = select(RecordFlag.record_id)
    if flag != ANY_FLAG:
        flagged = flagged.where(RecordFlag.flag == flag)
    if model is Task:
        return Task.id.in_(select(Record.task_id).where(Record.id.in_(flagged),
                                                        Record.status != RecordStatus.discarded))
    return Record.id.in_(flagged)


def _written_by(model, written_by: str):
    """Records written as `written_by` says (a WRITTEN_BY key); for tasks, those with such a live instance."""
    machine = Record.machine_draft
    condition = {"people": and_(Record.origin == "human", machine.is_(None)), "machine": machine.is_not(None),
                 "unreviewed": machine == "unreviewed", "edited": machine == "edited",
                 "imported": and_(Record.origin == "imported", machine.is_(None))}.get(written_by)
    if condition is None:
        raise InvalidInput(f"unknown 'written by' filter {written_by!r}; choose from {', '.join(WRITTEN_BY)}")
    if model is Task:
        return Task.id.in_(select(Record.task_id).where(condition, Record.status != RecordStatus.discarded))
    return condition


def _status(value: Any) -> str:
    return getattr(value, "value", value) or ""


def categories(session: Session, dataset: str | None = None, limit: int = 200) -> list[str]:
    """The most used record categories (for the filter's choices)."""
    query = select(Record.category, func.count()).where(Record.category.is_not(None))
    if dataset:
        query = query.join(Dataset, Dataset.id == Record.dataset_id).where(Dataset.name == dataset)
    rows = session.execute(query.group_by(Record.category).order_by(func.count().desc()).limit(limit)).all()
    return [r[0] for r in rows]


def tags_in_use(session: Session, dataset: str | None = None, limit: int = 200) -> list[str]:
    """The most used tags (for the filter's choices), in one dataset if named."""
    query = select(RecordTag.tag, func.count()).group_by(RecordTag.tag)
    if dataset:
        query = (query.join(Record, Record.id == RecordTag.record_id).join(Dataset, Dataset.id == Record.dataset_id)
                 .where(Dataset.name == dataset))
    return [r[0] for r in session.execute(query.order_by(func.count().desc(), RecordTag.tag).limit(limit)).all()]


def authors(session: Session) -> list[str]:
    rows = session.execute(select(Record.created_by).where(Record.created_by.is_not(None)).distinct()).scalars()
    task_rows = session.execute(select(Task.created_by).where(Task.created_by.is_not(None)).distinct()).scalars()
    return sorted(set(rows) | set(task_rows))
