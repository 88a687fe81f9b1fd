"""Assignment: curators give records and tasks to annotators (by hand, or split evenly with an overlap of k
annotators per item), annotators work through their queue, and curators follow progress, reassign, and reconcile
the answers k annotators gave to the same record.

An annotator's answer lives on their assignment, not on the record (which belongs to its author): with k > 1 the
answers stay independent until a curator keeps one, merges them or writes a new output, which is saved to the
record through the versioned path (a Revision saying whose answer it kept).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

from sqlalchemy import func, select, update
from sqlmodel import Session

from curation import agreement
from curation.services.annotation import InvalidInput, RecordForm, change_record, refuse_null_bytes
from curation.services.permissions import Actor, PermissionDenied
from curation.services.tags import require_curator
from db import repo
from db.assignment_tables import Assignment
from db.models import Dataset, Record, RecordStatus, Role, Task, User, utcnow

ITEM_TYPES = ("record", "task")
ACTIVE = ("open", "done", "skipped")  # a withdrawn assignment no longer counts
MAX_ANSWER = 100_000
CHUNK = 900  # ids per IN (...), under SQLite's bound-parameter limit


@dataclass
class SplitResult:
    items: int  # items given out
    assignments: list[int]  # the assignment ids made
    loads: dict[str, int]  # annotator -> open assignments in the dataset after the split

    def summary(self) -> str:
        if not self.items:
            return "Every item is already assigned: nothing to split."
        shares = ", ".join(f"{name} {load:,}" for name, load in self.loads.items())
        return (f"Assigned {self.items:,} item{'s' * (self.items != 1)} as {len(self.assignments):,} "
                f"assignment{'s' * (len(self.assignments) != 1)}; open per annotator: {shares}.")


@dataclass
class QueueItem:
    """One row of an annotator's queue, and what the queue's editor shows of it."""

    assignment_id: int
    dataset: str
    item_type: str
    item_id: int
    status: str
    title: str  # the record's instruction or the task's name, shortened
    instruction: str = ""
    input: str = ""
    current_output: str = ""
    answer: str = ""
    rating: int | None = None
    note: str | None = None
    others: int = 0  # how many other annotators have the same item (answers stay independent)


@dataclass
class Progress:
    annotator: str
    dataset: str
    open: int = 0
    done: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.open + self.done + self.skipped


@dataclass
class ItemAnswers:
    """A record several annotators (or one) answered, as the curator reconciles it."""

    record_id: int
    version: int
    instruction: str
    input: str
    current_output: str
    answers: list[tuple[str, str, int | None]]  # (annotator, answer, rating)
    waiting: list[str] = field(default_factory=list)  # annotators who have not answered yet
    agreement: float | None = None  # mean pairwise ROUGE-L of the answers; None with fewer than two


@dataclass
class AgreementReport:
    dataset: str
    items: int  # records answered by two or more annotators
    mean_item: float | None
    per_annotator: dict[str, float]
    rating_alpha: float | None
    rated_items: int
    lowest: list[tuple[int, float]]  # (record id, agreement) of the least agreed items

    def summary(self) -> str:
        if not self.items:
            return "No record has answers from two or more annotators yet."
        line = f"{self.items:,} record{'s' * (self.items != 1)} answered by two or more annotators: " \
               f"mean agreement of outputs {self.mean_item:.2f} (ROUGE-L)"
        if self.rating_alpha is not None:
            line += f"; Krippendorff's alpha of the ratings {self.rating_alpha:.2f} over {self.rated_items:,} items"
        return line + "."


def _dataset(session: Session, name: str | None) -> Dataset:
    if not name:
        raise InvalidInput("choose a dataset")
    found = repo.get_dataset(session, name)
    if found is None:
        raise InvalidInput(f"there is no dataset named {name!r}")
    return found


def _item_type(item_type: str) -> str:
    if item_type not in ITEM_TYPES:
        raise InvalidInput(f"assign records or tasks, not {item_type!r}")
    return item_type


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for at in range(0, len(ids), CHUNK):
        yield ids[at:at + CHUNK]


def _known_people(session: Session, names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(n.strip() for n in names if n and n.strip()))
    if not names:
        raise InvalidInput("choose the annotators")
    found = set(session.execute(select(User.name).where(User.name.in_(names))).scalars())
    unknown = [n for n in names if n not in found]
    if unknown:
        raise InvalidInput(f"no user is named {', '.join(repr(n) for n in unknown)}")
    return names


def annotators(session: Session, actor: Actor | None) -> list[str]:
    """Who can be given work: every annotator, by name."""
    require_curator(actor, "assign work")
    return list(session.execute(select(User.name).where(User.role == Role.annotator).order_by(User.name)).scalars())


def _items_of(session: Session, dataset: Dataset, item_type: str, item_ids: list[int]) -> list[int]:
    table = Record if item_type == "record" else Task
    found: set[int] = set()
    for chunk in _chunks(item_ids):
        found |= set(session.execute(select(table.id).where(table.id.in_(chunk),
                                                            table.dataset_id == dataset.id)).scalars())
    missing = [i for i in item_ids if i not in found]
    if missing:
        shown = ", ".join(f"#{i}" for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise InvalidInput(f"{len(missing):,} {item_type}{'s' * (len(missing) != 1)} not in {dataset.name}: {shown}")
    return item_ids


def _loads(session: Session, dataset_id: int, people: list[str]) -> dict[str, int]:
    rows = session.execute(select(Assignment.annotator, func.count()).where(
        Assignment.dataset_id == dataset_id, Assignment.status == "open", Assignment.annotator.in_(people))
        .group_by(Assignment.annotator)).all()
    counted = dict(rows)
    return {name: int(counted.get(name, 0)) for name in people}


def _rows_of(session: Session, item_type: str, item_ids: list[int]) -> dict[int, dict[str, str]]:
    """item -> annotator -> status of every assignment row of the items, withdrawn ones included (the unique
    key spans them, so a withdrawn row is opened again rather than added)."""
    rows: dict[int, dict[str, str]] = {}
    for chunk in _chunks(item_ids):
        for item_id, name, status in session.execute(select(Assignment.item_id, Assignment.annotator,
                                                            Assignment.status).where(
                Assignment.item_type == item_type, Assignment.item_id.in_(chunk))):
            rows.setdefault(item_id, {})[name] = status
    return rows


def _active(statuses: dict[str, str]) -> set[str]:
    return {name for name, status in statuses.items() if status in ACTIVE}


def assign(session: Session, actor: Actor | None, *, dataset: str, item_type: str = "record",
           item_ids: list[int], annotators: list[str], overlap: int = 1) -> list[int]:
    """Give each item to `overlap` of the annotators, the least loaded first (ties in the order given);
    an annotator who already has an item is not given it twice. Returns the assignment ids made."""
    require_curator(actor, "assign work")
    item_type = _item_type(item_type)
    found = _dataset(session, dataset)
    people = _known_people(session, annotators)
    overlap = int(overlap or 1)
    if overlap < 1:
        raise InvalidInput("each item needs at least one annotator")
    if overlap > len(people):
        raise InvalidInput(f"an overlap of {overlap} needs at least {overlap} annotators; {len(people)} chosen")
    ids = _items_of(session, found, item_type, list(dict.fromkeys(int(i) for i in item_ids)))
    if not ids:
        raise InvalidInput(f"choose the {item_type}s to assign")
    loads = _loads(session, found.id, people)
    rows = _rows_of(session, item_type, ids)
    order = {name: at for at, name in enumerate(people)}
    made: list[Assignment] = []
    now = utcnow()
    for item_id in ids:
        have = _active(rows.get(item_id, {}))
        wanted = overlap - len(have & set(people))
        free = sorted((n for n in people if n not in have), key=lambda n: (loads[n], order[n]))
        for name in free[:max(0, wanted)]:
            loads[name] += 1
            made.append(_reopen_or_new(session, found.id, item_type, item_id, name, actor.name, now,
                                       name in rows.get(item_id, {})))
    session.flush()
    return [a.id for a in made]


def _reopen_or_new(session: Session, dataset_id: int, item_type: str, item_id: int, name: str, by: str,
                   now: datetime, exists: bool) -> Assignment:
    if exists:  # withdrawn before: it opens again, its old answer kept for the annotator to start from
        row = session.execute(select(Assignment).where(Assignment.item_type == item_type,
                                                       Assignment.item_id == item_id,
                                                       Assignment.annotator == name)).scalar_one()
        row.status, row.assigned_by, row.assigned_at, row.reconciled_at, row.reconciled_by = \
            "open", by, now, None, None
    else:
        row = Assignment(dataset_id=dataset_id, item_type=item_type, item_id=item_id, annotator=name,
                         assigned_by=by, assigned_at=now)
    session.add(row)
    return row


def unassigned_ids(session: Session, *, dataset: str, item_type: str = "record") -> list[int]:
    """The items of the dataset nobody has (open, done or skipped), not yet approved or discarded."""
    found = _dataset(session, dataset)
    table = Record if _item_type(item_type) == "record" else Task
    taken = select(Assignment.item_id).where(Assignment.item_type == item_type, Assignment.status.in_(ACTIVE))
    query = select(table.id).where(table.dataset_id == found.id, table.id.not_in(taken),
                                   table.status.not_in([RecordStatus.approved, RecordStatus.discarded]))
    if table is Record:
        query = query.where(Record.task_id.is_(None))  # a task's instances go with their task
    return list(session.execute(query.order_by(table.id)).scalars())


def split_evenly(session: Session, actor: Actor | None, *, dataset: str, annotators: list[str],
                 item_type: str = "record", overlap: int = 1) -> SplitResult:
    """Split the dataset's unassigned items among the annotators, `overlap` annotators per item, so that their
    open loads differ by at most one (10 items, 3 annotators, overlap 2: 20 assignments, 7/7/6)."""
    require_curator(actor, "assign work")
    ids = unassigned_ids(session, dataset=dataset, item_type=item_type)
    people = _known_people(session, annotators)
    made = assign(session, actor, dataset=dataset, item_type=item_type, item_ids=ids, annotators=people,
                  overlap=overlap) if ids else []
    return SplitResult(len(ids), made, _loads(session, _dataset(session, dataset).id, people))


def withdraw(session: Session, actor: Actor | None, assignment_ids: list[int]) -> int:
    """Take back the open assignments among these (answered ones stay); how many were withdrawn."""
    require_curator(actor, "withdraw assignments")
    withdrawn = 0
    for chunk in _chunks([int(i) for i in assignment_ids]):
        withdrawn += session.execute(update(Assignment).where(Assignment.id.in_(chunk), Assignment.status == "open")
                                     .values(status="withdrawn").execution_options(synchronize_session=False)
                                     ).rowcount or 0
    session.flush()
    return withdrawn


def reassign(session: Session, actor: Actor | None, *, dataset: str, from_annotator: str, to_annotator: str) -> int:
    """Move `from_annotator`'s open items in the dataset to `to_annotator` (unless they already have one);
    how many moved."""
    require_curator(actor, "reassign work")
    found = _dataset(session, dataset)
    if from_annotator == to_annotator:
        raise InvalidInput("choose two different annotators")
    _known_people(session, [from_annotator, to_annotator])
    rows = list(session.execute(select(Assignment).where(Assignment.dataset_id == found.id,
                                                         Assignment.annotator == from_annotator,
                                                         Assignment.status == "open")).scalars())
    if not rows:
        raise InvalidInput(f"{from_annotator} has no open items in {dataset}")
    theirs: dict[str, dict[int, dict[str, str]]] = {}
    for item_type in {row.item_type for row in rows}:
        theirs[item_type] = _rows_of(session, item_type, [r.item_id for r in rows if r.item_type == item_type])
    moved = 0
    for row in rows:
        statuses = theirs[row.item_type].get(row.item_id, {})
        if to_annotator in _active(statuses):
            continue
        exists = to_annotator in statuses
        row.status = "withdrawn"
        session.add(row)
        session.flush()
        _reopen_or_new(session, found.id, row.item_type, row.item_id, to_annotator, actor.name, utcnow(), exists)
        moved += 1
    session.flush()
    return moved


def progress(session: Session, actor: Actor | None, *, dataset: str | None = None) -> list[Progress]:
    """Open, done and skipped items per annotator and dataset."""
    require_curator(actor, "follow the team's progress")
    query = (select(Dataset.name, Assignment.annotator, Assignment.status, func.count())
             .join(Dataset, Dataset.id == Assignment.dataset_id).where(Assignment.status.in_(ACTIVE))
             .group_by(Dataset.name, Assignment.annotator, Assignment.status))
    if dataset:
        query = query.where(Dataset.id == _dataset(session, dataset).id)
    table: dict[tuple[str, str], Progress] = {}
    for name, person, status, count in session.execute(query):
        row = table.setdefault((name, person), Progress(person, name))
        setattr(row, status, int(count))
    return [table[key] for key in sorted(table)]


# ---- the annotator's queue ------------------------------------------------------------------------------------

def _short(text: str, width: int = 90) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[:width - 1] + "…"


def my_queue(session: Session, actor: Actor | None, *, dataset: str | None = None) -> list[QueueItem]:
    """The signed-in user's assignments: open ones first (oldest first), then skipped and done."""
    if actor is None:
        raise PermissionDenied("sign in first")
    query = (select(Assignment, Dataset.name).join(Dataset, Dataset.id == Assignment.dataset_id)
             .where(Assignment.annotator == actor.name,
                    Assignment.status.in_(ACTIVE)))
    if dataset:
        query = query.where(Dataset.id == _dataset(session, dataset).id)
    rows = session.execute(query).all()
    titles = _titles(session, [a for a, _ in rows])
    order = {"open": 0, "skipped": 1, "done": 2}
    items = [QueueItem(a.id, name, a.item_type, a.item_id, a.status, titles.get((a.item_type, a.item_id), "?"),
                       answer=a.answer or "", rating=a.rating, note=a.note) for a, name in rows]
    return sorted(items, key=lambda q: (order[q.status], q.assignment_id))


def _titles(session: Session, rows: list[Assignment]) -> dict[tuple[str, int], str]:
    titles: dict[tuple[str, int], str] = {}
    for item_type, table, column in (("record", Record, Record.instruction), ("task", Task, Task.name)):
        ids = [a.item_id for a in rows if a.item_type == item_type]
        for chunk in _chunks(ids):
            for item_id, text in session.execute(select(table.id, column).where(table.id.in_(chunk))):
                titles[(item_type, item_id)] = _short(text)
    return titles


def _mine(session: Session, actor: Actor | None, assignment_id: int) -> Assignment:
    if actor is None:
        raise PermissionDenied("sign in first")
    row = session.get(Assignment, int(assignment_id))
    if row is None or row.status == "withdrawn":
        raise InvalidInput(f"assignment #{assignment_id} does not exist or was taken back")
    if row.annotator != actor.name:
        raise PermissionDenied("this item is assigned to someone else")
    return row


def queue_item(session: Session, actor: Actor | None, assignment_id: int) -> QueueItem:
    """One of the user's items with what the queue's editor shows: the record's text, or the task's definition."""
    row = _mine(session, actor, assignment_id)
    dataset = session.get(Dataset, row.dataset_id)
    others = session.execute(select(func.count()).where(Assignment.item_type == row.item_type,
                                                        Assignment.item_id == row.item_id,
                                                        Assignment.id != row.id,
                                                        Assignment.status.in_(ACTIVE))).scalar_one()
    item = QueueItem(row.id, dataset.name, row.item_type, row.item_id, row.status, "", answer=row.answer or "",
                     rating=row.rating, note=row.note, others=int(others))
    if row.item_type == "record":
        record = session.get(Record, row.item_id)
        if record is None:
            raise InvalidInput(f"record #{row.item_id} no longer exists")
        item.title, item.instruction, item.input = _short(record.instruction), record.instruction, record.input
        item.current_output = (record.outputs or [""])[0] if record.outputs else ""
    else:
        task = session.get(Task, row.item_id)
        if task is None:
            raise InvalidInput(f"task #{row.item_id} no longer exists")
        item.title, item.instruction = task.name, task.definition
    return item


def _checked_answer(answer: str | None, rating: int | None) -> tuple[str, int | None]:
    answer = (answer or "").strip()
    refuse_null_bytes({"answer": answer})
    if len(answer) > MAX_ANSWER:
        raise InvalidInput(f"an answer is at most {MAX_ANSWER:,} characters; this one is {len(answer):,}")
    if rating in ("", None):
        return answer, None
    try:
        rating = int(rating)
    except (TypeError, ValueError):
        raise InvalidInput("a rating is a whole number from 1 to 5") from None
    if not 1 <= rating <= 5:
        raise InvalidInput("a rating is a whole number from 1 to 5")
    return answer, rating


def _answerable(row: Assignment) -> None:
    if row.reconciled_at is not None:
        raise InvalidInput("a curator has already reconciled this item: its answers are closed")


def save_answer(session: Session, actor: Actor | None, assignment_id: int, *, answer: str | None,
                rating: int | None = None) -> QueueItem:
    """Keep the answer as it is, not yet submitted (a done item can be corrected until it is reconciled)."""
    row = _mine(session, actor, assignment_id)
    _answerable(row)
    row.answer, row.rating = _checked_answer(answer, rating)
    session.add(row)
    session.flush()
    return queue_item(session, actor, row.id)


def submit_answer(session: Session, actor: Actor | None, assignment_id: int, *, answer: str | None,
                  rating: int | None = None) -> QueueItem:
    """Hand the item in: a record needs an answer (or at least a rating); a task is marked done."""
    row = _mine(session, actor, assignment_id)
    _answerable(row)
    answer, rating = _checked_answer(answer, rating)
    if row.item_type == "record" and not answer and rating is None:
        raise InvalidInput("write your answer (or rate the current output) before submitting; skip it otherwise")
    row.answer, row.rating, row.status, row.answered_at, row.note = answer or None, rating, "done", utcnow(), None
    session.add(row)
    session.flush()
    return queue_item(session, actor, row.id)


def skip_item(session: Session, actor: Actor | None, assignment_id: int, *, note: str | None = None) -> QueueItem:
    """Set the item aside (the curator sees it as skipped, with the note)."""
    row = _mine(session, actor, assignment_id)
    _answerable(row)
    refuse_null_bytes({"note": note})
    row.status, row.note, row.answered_at = "skipped", (note or "").strip() or None, utcnow()
    session.add(row)
    session.flush()
    return queue_item(session, actor, row.id)


def next_open(items: list[QueueItem], after: int | None) -> QueueItem | None:
    """The open item after assignment `after` in queue order (wrapping around); None when none is open."""
    open_items = [q for q in items if q.status == "open"]
    if not open_items:
        return None
    later = [q for q in open_items if after is None or q.assignment_id > after]
    return (later or open_items)[0]


# ---- reconciling overlapping answers --------------------------------------------------------------------------

def answers_to_reconcile(session: Session, actor: Actor | None, *, dataset: str, include_waiting: bool = False,
                         limit: int = 200) -> list[ItemAnswers]:
    """The records with answers not yet reconciled: every holder answered (or, with include_waiting, any did);
    the least agreed first, so disagreements reach the curator before easy items."""
    require_curator(actor, "reconcile answers")
    found = _dataset(session, dataset)
    rows = list(session.execute(select(Assignment).where(
        Assignment.dataset_id == found.id, Assignment.item_type == "record", Assignment.status.in_(ACTIVE),
        Assignment.reconciled_at.is_(None))).scalars())
    by_item: dict[int, list[Assignment]] = {}
    for row in rows:
        by_item.setdefault(row.item_id, []).append(row)
    items: list[ItemAnswers] = []
    for record_id, held in by_item.items():
        done = [a for a in held if a.status == "done"]
        waiting = [a.annotator for a in held if a.status == "open"]
        if not done or (waiting and not include_waiting):
            continue
        record = session.get(Record, record_id)
        if record is None:
            continue
        answers = [(a.annotator, a.answer or "", a.rating) for a in sorted(done, key=lambda a: a.annotator)]
        written = [text for _, text, _ in answers if text]
        items.append(ItemAnswers(record.id, record.version, record.instruction, record.input,
                                 (record.outputs or [""])[0] if record.outputs else "", answers, sorted(waiting),
                                 agreement.text_agreement(written) if len(written) >= 2 else None))
    items.sort(key=lambda i: (i.agreement if i.agreement is not None else 2.0, i.record_id))
    return items[:limit]


def reconcile(session: Session, actor: Actor | None, *, record_id: int, output: str, how: str,
              expected_version: int | None = None) -> int:
    """Write the reconciled output to the record (a Revision saying how: `kept <name>'s answer`, `merged`,
    `wrote a new one`) and close the record's answers. Returns the record's new version."""
    require_curator(actor, "reconcile answers")
    output = (output or "").strip()
    if not output:
        raise InvalidInput("the reconciled output is empty: keep an answer, merge them or write a new one")
    record = repo.get_record(session, int(record_id))
    held = list(session.execute(select(Assignment).where(Assignment.item_type == "record",
                                                         Assignment.item_id == record.id,
                                                         Assignment.status == "done",
                                                         Assignment.reconciled_at.is_(None))).scalars())
    if not held:
        raise InvalidInput(f"record #{record.id} has no answers waiting to be reconciled")
    dataset = session.get(Dataset, record.dataset_id)
    outputs = [output] + [o for o in (record.outputs or [])[1:]]
    names = ", ".join(sorted(a.annotator for a in held))
    note = f"reconciled the answers of {names}: {how}"
    view = change_record(session, actor, record.id, "save",
                         expected_version=record.version if expected_version is None else expected_version,
                         form=RecordForm(dataset.name, record.instruction, record.input, outputs,
                                         record.system_prompt, record.category), note=note)
    now = utcnow()
    for row in held:
        row.reconciled_at, row.reconciled_by = now, actor.name
        session.add(row)
    session.flush()
    return view.version


def agreement_report(session: Session, *, dataset: str, lowest: int = 5) -> AgreementReport:
    """Agreement per item and per annotator over the dataset's answered records (everyone who can see the
    dataset may read it: it names annotators, not their answers)."""
    found = _dataset(session, dataset)
    rows = session.execute(select(Assignment.item_id, Assignment.annotator, Assignment.answer, Assignment.rating)
                           .where(Assignment.dataset_id == found.id, Assignment.item_type == "record",
                                  Assignment.status == "done")).all()
    answers: dict[int, dict[str, str]] = {}
    ratings: dict[int, dict[str, int]] = {}
    for item_id, name, answer, rating in rows:
        if answer:
            answers.setdefault(item_id, {})[name] = answer
        if rating is not None:
            ratings.setdefault(item_id, {})[name] = int(rating)
    per_item = agreement.item_agreement(answers)
    shared = {item: by for item, by in answers.items() if len(by) >= 2}
    rated = {item: by for item, by in ratings.items() if len(by) >= 2}
    mean = sum(per_item.values()) / len(per_item) if per_item else None
    return AgreementReport(found.name, len(per_item), mean, agreement.annotator_agreement(shared),
                           agreement.rating_alpha(rated), len(rated),
                           sorted(per_item.items(), key=lambda kv: (kv[1], kv[0]))[:lowest])
