"""Draft the outputs of many records at once: one request per record, through the reply cache, each reply written
into its record (with its provenance) as it arrives.

A run that is stopped or killed keeps every record it wrote and every reply it got (both are committed one by
one), so the same run again takes the finished ones from the cache and asks the model only for the rest. A reply
the studio cannot use (cut off at the token limit, empty, in another language than the dataset's) is reported
per record and written nowhere; so is a record someone saved while its draft was on the way.
"""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlmodel import Session

from curation.drafting import DRAFT_OUTPUT, Sampling, draft_output_request, wrong_language
from curation.llm import request_key, run_requests
from curation.llm.chat import ChatReply, normalize_base_url
from curation.llm.choices import ModelChoice, backend_for
from curation.llm.errors import EmptyReply
from curation.llm.runner import Progress
from curation.provenance import MachineText
from curation.services.annotation import InvalidInput, RecordForm, change_record
from curation.services.drafting import ModelFailed, backend_of, field_text
from curation.services.permissions import Actor, PermissionDenied, authorize
from db import repo
from db.llm_cache import DatabaseReplyCache
from db.models import Record, RecordStatus

# The first words of each reason a reply is not written; the summary counts rejections by them.
CUT_OFF, EMPTY, LANGUAGE, NO_INSTRUCTION = ("cut off at the token limit", "empty reply", "wrong language",
                                            "no instruction")


@dataclass
class DraftRunReport:
    """What a bulk draft did: counts, and per record why a draft was not written."""

    dataset: str
    model: str  # the label of the model that drafted
    selected: int = 0
    written: int = 0
    already_there: int = 0  # the record already held exactly this output
    from_cache: int = 0
    requested: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (record id, reason): a reply not used
    failed: list[tuple[int, str]] = field(default_factory=list)  # (record id, message): no reply, or not saved
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None  # dollars, when the model has a price
    seconds: float = 0.0
    stopped: bool = False

    def rejected_by_reason(self) -> dict[str, int]:
        """{the first words of a reason: how many records}, most frequent first."""
        return dict(Counter(reason.split(":")[0] for _, reason in self.rejected).most_common())


@dataclass(frozen=True)
class _Target:
    """A record as it was selected: what its request is built from and the version the draft is based on."""

    id: int
    version: int
    instruction: str
    input: str
    outputs: tuple[str, ...]
    system_prompt: str | None
    category: str | None

    @property
    def kept_outputs(self) -> list[str]:
        return [o for o in self.outputs if o and o.strip()]


def _may_bulk_draft(actor: Actor | None) -> None:
    authorize(actor, "view")  # signed in at all
    if not actor.reviews:
        raise PermissionDenied("only a curator or admin drafts outputs in bulk")


def _selected(session: Session, dataset_id: int, statuses, missing_outputs: bool, limit: int | None) -> list[_Target]:
    """The dataset's plain records (not task instances) in id order; never a discarded one."""
    table = Record.__table__
    query = (select(table.c.id, table.c.version, table.c.instruction, table.c.input, table.c.outputs,
                    table.c.system_prompt, table.c.category)
             .where(table.c.dataset_id == dataset_id, table.c.task_id.is_(None),
                    table.c.status != RecordStatus.discarded)
             .order_by(table.c.id))
    if statuses is not None:
        query = query.where(table.c.status.in_([RecordStatus(s) for s in statuses]))
    targets = [_Target(r.id, r.version, r.instruction or "", r.input or "", tuple(r.outputs or ()),
                       r.system_prompt, r.category) for r in session.execute(query)]
    if missing_outputs:  # in Python: "no output" is an empty JSON list or only blank texts, alike on every database
        targets = [t for t in targets if not t.kept_outputs]
    return targets[:limit] if limit is not None else targets


def _statuses(statuses) -> list[str] | None:
    """The status names to draft (None: all but discarded); InvalidInput for one that is not a status."""
    if statuses is None:
        return None
    names = [getattr(s, "value", s) for s in statuses]
    known = [s.value for s in RecordStatus if s != RecordStatus.discarded]
    if unknown := [s for s in names if s not in known]:
        raise InvalidInput(f"unknown status {unknown[0]!r}; choose from {', '.join(known)}")
    if not names:
        raise InvalidInput("choose the statuses of the records to draft")
    return names


def draft_outputs(session: Session, actor: Actor, settings, *, dataset: str, model_label: str | None = None,
                  choice: ModelChoice | None = None, statuses=("draft",), missing_outputs: bool = False,
                  limit: int | None = None, concurrency: int | None = None, sampling: Sampling = Sampling(),
                  progress: Progress | None = None, stop: threading.Event | None = None) -> DraftRunReport:
    """The report of drafting an output for each selected record of `dataset` with one model.

    The model is the configured one called `model_label` (the default when None), or `choice` when given (the
    CLI's ad hoc --backend/--base-url/--model-name). `statuses=None` takes every status but discarded;
    `missing_outputs` only records without an output. A record without outputs gets the draft as its output,
    one with outputs gets it as the next one. Raises PermissionDenied for an annotator, InvalidInput for a bad
    selection, ModelFailed when the model cannot answer at all (the endpoint, the key or the model is wrong).
    """
    _may_bulk_draft(actor)
    statuses = _statuses(statuses)
    if limit is not None and limit < 1:
        raise InvalidInput("the limit is at least 1 record")
    found = repo.get_dataset(session, (dataset or "").strip())
    if found is None:
        raise InvalidInput(f"there is no dataset named {dataset!r}" if dataset else "choose a dataset")
    if choice is None:
        choice, backend = backend_of(settings, model_label)
    else:
        backend = backend_for(choice, settings.llm_timeout)
    name, language = found.name, found.language
    targets = _selected(session, found.id, statuses, missing_outputs, limit)
    report = DraftRunReport(dataset=name, model=choice.label, selected=len(targets))
    requests, runnable = [], []
    for target in targets:
        if not target.instruction.strip():
            report.rejected.append((target.id, f"{NO_INSTRUCTION}: the record has no instruction to draft from"))
            continue
        requests.append(draft_output_request(target.instruction, target.input, system_prompt=target.system_prompt,
                                             sampling=sampling))
        runnable.append(target)
    identity = backend.identity

    def on_reply(index: int, reply: ChatReply) -> None:
        target, request = runnable[index], requests[index]
        text = field_text(DRAFT_OUTPUT, reply.text)
        if not text:
            why = f"{EMPTY}: the model returned no text"
        elif reply.truncated:
            why = f"{CUT_OFF}: the reply stopped at {request.max_tokens} tokens"
        elif other := wrong_language(text, language):
            why = f"{LANGUAGE}: {other}"
        else:
            why = None
        if why:
            report.rejected.append((target.id, why))
            return
        machine = MachineText(text=text, backend=identity.kind, base_url=normalize_base_url(identity.base_url),
                              model=identity.model, parameters=request.parameters(), prompt=DRAFT_OUTPUT.name,
                              prompt_version=DRAFT_OUTPUT.version, cache_key=request_key(identity, request))
        _write(session, actor, name, target, machine, report)

    run = run_requests(backend, requests, concurrency=concurrency or settings.llm_concurrency,
                       cache=DatabaseReplyCache(session), progress=progress, on_reply=on_reply, stop=stop)
    for index, error in sorted(run.errors.items()):
        if isinstance(error, EmptyReply):
            report.rejected.append((runnable[index].id, f"{EMPTY}: the model returned no text"))
        elif not error.fatal:
            report.failed.append((runnable[index].id, str(error)))
    report.from_cache, report.requested, report.stopped = run.cached, run.requested, run.stopped
    report.prompt_tokens, report.completion_tokens, report.seconds = (run.prompt_tokens, run.completion_tokens,
                                                                      run.seconds)
    report.cost = choice.cost(run.prompt_tokens, run.completion_tokens)
    report.rejected.sort()
    report.failed.sort()
    if run.fatal is not None:
        kept = f"; {report.written} records were drafted before it stopped" if report.written else ""
        raise ModelFailed(f"{choice.label} did not answer: {run.fatal}{kept}")
    return report


def _write(session: Session, actor: Actor, dataset: str, target: _Target, machine: MachineText,
           report: DraftRunReport) -> None:
    """Save the draft into the record as its first or next output; a refusal is the record's, not the run's."""
    outputs = target.kept_outputs
    if any(o.strip() == machine.text for o in outputs):
        report.already_there += 1
        return
    field_name = "output" if not outputs else f"output {len(outputs) + 1}"
    form = RecordForm(dataset=dataset, instruction=target.instruction, input=target.input,
                      outputs=[*outputs, machine.text], system_prompt=target.system_prompt, category=target.category)
    try:
        change_record(session, actor, target.id, "save", expected_version=target.version, form=form,
                      machine={field_name: machine}, note=f"drafted by {machine.backend} · {machine.model} (bulk)")
        session.commit()
    except (repo.ConflictError, repo.NotFoundError, InvalidInput, PermissionDenied) as error:
        session.rollback()
        report.failed.append((target.id, str(error)))
        return
    except BaseException:
        session.rollback()  # a killed or broken write leaves the record as it was, never half-saved
        raise
    report.written += 1
