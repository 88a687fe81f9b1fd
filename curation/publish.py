"""Publish a dataset to the Hub: chosen records, a grouped stratified split, one config per format, a card.

`plan_publication` reads the database and builds every row and the card (no network); `push_publication`
sends them with `datasets` and returns the commit id the Hub gave the card, the revision to record.
The token is passed through to the libraries for this one call and never kept, printed or logged.
"""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from sqlmodel import Session

from curation.dataset_card import CardFacts, render_card
from curation.formats.writers import to_alpaca, to_messages, to_prompt_completion
from curation.quality.records import CHECKS
from curation.stats import model_counts, written_by
from db import repo
from db.flags import stored_flags
from db.models import Record, RecordStatus

CONFIGS: dict[str, Callable] = {"messages": to_messages, "alpaca": to_alpaca, "prompt_completion": to_prompt_completion}
DEFAULT_CONFIGS = ("messages",)
DEFAULT_STATUSES = (RecordStatus.approved,)
Progress = Callable[[str], None]


class PublishError(Exception):
    """Publishing could not be done; the message says why in the user's words."""


@dataclass
class PublicationPlan:
    dataset: str
    dataset_id: int
    configs: list[str]
    statuses: list[str]
    rows: dict[str, dict[str, list[dict]]]  # config -> split -> rows
    snapshot: dict[str, list[list[int]]]  # split -> [[record id, version], ...]
    facts: CardFacts

    @property
    def split_counts(self) -> dict[str, int]:
        return {split: len(members) for split, members in self.snapshot.items()}


def near_duplicate_groups(session: Session, dataset: str) -> tuple[list[list[int]], str]:
    """Near-duplicate groups from the latest dedup search (none when no search ran), and a sentence about it."""
    try:
        from curation.services import dedup as dedup_service
    except ImportError:
        return [], "no near-duplicate search is available"
    run = dedup_service.latest_run(session, dataset=dataset)
    if run is None:
        return [], "no near-duplicate search was run"
    # Connected groups here, not the review grouping: a split must keep every near-duplicate pair on one side.
    groups = [[r["id"] for r in group.records]
              for group in dedup_service.duplicate_groups(session, dataset=dataset, grouping="connected")]
    return groups, (f"{run.method} search on {run.fields} at threshold {run.threshold:g}"
                    f" ({len(groups)} groups at publication)")


def split_records(records: list[tuple[int, str | None]], groups: Iterable[Iterable[int]], *,
                  test_fraction: float, seed: int = 0) -> dict[int, str]:
    """{record id: "train" | "test"}, stratified by category, never splitting a near-duplicate group."""
    category = dict(records)
    group_of: dict[int, int] = {}
    for number, members in enumerate(groups):
        for record_id in members:
            if record_id in category:
                group_of.setdefault(record_id, number)
    units: dict[Any, list[int]] = defaultdict(list)
    for record_id, _ in records:
        units[("g", group_of[record_id]) if record_id in group_of else ("r", record_id)].append(record_id)
    by_category: dict[str, list[list[int]]] = defaultdict(list)
    for members in units.values():
        label = Counter(category[m] or "" for m in members).most_common(1)[0][0]
        by_category[label].append(sorted(members))
    rng = random.Random(seed)
    side: dict[int, str] = {}
    for label in sorted(by_category):
        bunch = sorted(by_category[label])
        rng.shuffle(bunch)
        target = round(sum(map(len, bunch)) * test_fraction)
        in_test = 0
        for members in bunch:
            to_test = in_test < target and in_test + len(members) <= max(target, 1)
            in_test += len(members) if to_test else 0
            side.update({m: "test" if to_test else "train" for m in members})
    return side


def _token_percentiles(texts: list[str]) -> tuple[dict[str, float], str]:
    import numpy as np

    from curation.stats import load_tokenizer

    if not texts:
        return {}, "the bundled MiniLM tokenizer"
    lengths = np.asarray([len(ids) for ids in load_tokenizer()(texts, add_special_tokens=False)["input_ids"]])
    summary = {f"p{p}": float(np.percentile(lengths, p)) for p in (50, 90, 99)}
    summary.update(mean=round(float(lengths.mean()), 1), max=float(lengths.max()))
    return summary, "the bundled all-MiniLM-L6-v2 WordPiece tokenizer"


def _quality_flags(session: Session, dataset_id: int, records: list[Record]) -> dict[str, int]:
    """Records of the publication failing each check (every check listed), from the stored flags."""
    stored = stored_flags(session, dataset_id)
    counts = Counter({name: 0 for name in CHECKS})
    for record in records:
        counts.update(stored.get(record.id, ()))
    return dict(counts)


def _uniform(rows: list[dict]) -> list[dict]:
    """Give every row the same keys (a key only some rows have gets "" elsewhere), as one Arrow schema needs.

    `tools` is a list where present, so it is null elsewhere: Arrow cannot mix a list with text.
    """
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    return [{key: row.get(key, None if key == "tools" else "") for key in keys} for row in rows]


def plan_publication(session: Session, *, dataset: str, repo_id: str, statuses: Iterable[str] = DEFAULT_STATUSES,
                     configs: Iterable[str] = DEFAULT_CONFIGS, test_fraction: float = 0.1,
                     seed: int = 0, only_ids: Iterable[int] | None = None) -> PublicationPlan:
    """Every row of every config and split, the record-version snapshot and the card facts (no network).

    `only_ids` (a selection's records) keeps just those records of the chosen statuses.
    """
    statuses = [getattr(s, "value", s) for s in statuses]
    if unknown := [s for s in statuses if s not in {k.value for k in RecordStatus}]:
        raise PublishError(f"unknown status {unknown[0]!r}; choose from {', '.join(k.value for k in RecordStatus)}")
    if not statuses or RecordStatus.discarded.value in statuses:
        raise PublishError("choose the statuses to publish (discarded records are never published)")
    configs = list(dict.fromkeys(configs))
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown or not configs:
        raise PublishError(f"unknown format {unknown[0] if unknown else '(none)'}; choose from {', '.join(CONFIGS)}")
    found = repo.get_dataset(session, dataset)
    if found is None:
        raise PublishError(f"no dataset named {dataset!r}")
    dataset_id, description, license, language = found.id, found.description, found.license, found.language
    records = list(repo.iter_records(session, dataset_id, [RecordStatus(s) for s in statuses]))
    if only_ids is not None:
        wanted = set(only_ids)
        records = [r for r in records if r.id in wanted]
    if not records:
        raise PublishError(f"dataset {dataset!r} has no records with status {' or '.join(statuses)}")
    groups, near_duplicates = near_duplicate_groups(session, dataset)
    side = split_records([(r.id, r.category) for r in records], groups, test_fraction=test_fraction, seed=seed)
    splits = [s for s in ("train", "test") if s in side.values()]
    rows = {c: {s: [] for s in splits} for c in configs}
    snapshot: dict[str, list[list[int]]] = {s: [] for s in splits}
    texts = []
    for record in records:
        draft = repo.record_draft(record)
        for config in configs:
            rows[config][side[record.id]].append(CONFIGS[config](draft))
        snapshot[side[record.id]].append([record.id, record.version])
        texts.append("\n".join(m.get("content") or "" for m in to_messages(draft)["messages"]))
    rows = {c: {s: _uniform(r) for s, r in by_split.items()} for c, by_split in rows.items()}
    lengths, tokenizer = _token_percentiles(texts)
    people = {name for r in records for name in (r.created_by, r.updated_by) if name}
    facts = CardFacts(
        dataset=dataset, repo_id=repo_id, description=description, license=license, language=language,
        configs=configs, default_config=configs[0], split_counts={s: len(snapshot[s]) for s in splits},
        by_category=dict(Counter(r.category or "(none)" for r in records).most_common()),
        by_status=dict(Counter(r.status.value for r in records).most_common()),
        token_lengths=lengths, tokenizer=tokenizer, near_duplicates=near_duplicates,
        quality_flags=_quality_flags(session, dataset_id, records), annotators=len(people), statuses=statuses,
        written_by=written_by(session, dataset=dataset, statuses=statuses),
        models=model_counts(session, dataset=dataset, statuses=statuses),
        **_guidelines(session, dataset_id),
    )
    return PublicationPlan(dataset=dataset, dataset_id=dataset_id, configs=configs, statuses=statuses, rows=rows,
                           snapshot=snapshot, facts=facts)


def _guidelines(session, dataset_id: int) -> dict:
    """The annotation guidelines in force, for the card: {"guidelines": text, "guidelines_version": n}."""
    from sqlmodel import select

    from db.guidelines_tables import Guidelines

    row = session.exec(select(Guidelines).where(Guidelines.dataset_id == dataset_id)
                       .order_by(Guidelines.version.desc()).limit(1)).first()
    return {"guidelines": row.text, "guidelines_version": row.version} if row else {}


def explain_hub_error(error: Exception, endpoint: str) -> str:
    """A plain sentence for a failed Hub call (never containing the token)."""
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(error, HfHubHTTPError) and error.response is not None:
        status = error.response.status_code
        if status == 401:
            return "the Hub refused the token (401 Unauthorized): check HF_TOKEN or the token you typed"
        if status == 403:
            return "the token may not write to this repository (403 Forbidden)"
        if status >= 500:
            return f"the Hub answered {status} (server error); try again later"
        return f"the Hub answered {status}: {str(error).splitlines()[0]}"
    if isinstance(error, (OSError, ConnectionError)) or type(error).__name__ in ("ConnectError", "ConnectTimeout"):
        return f"could not reach the Hub at {endpoint}: {type(error).__name__}"
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


@contextmanager
def _hub_repo(repo_id: str, *, private: bool, token: str | None, say: Callable[[str], None]):
    """The HfApi for `repo_id` once the token is checked and the repo exists; any failure in the block becomes
    one plain PublishError sentence."""
    from huggingface_hub import HfApi, constants

    endpoint = constants.ENDPOINT
    if not token:
        raise PublishError("no Hugging Face token: set HF_TOKEN or type one for this action")
    api = HfApi(endpoint=endpoint, token=token)
    try:
        say(f"checking the token with {endpoint}")
        api.whoami()
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        yield api
    except PublishError:
        raise
    except Exception as error:  # noqa: BLE001 - every failure becomes one plain sentence
        raise PublishError(f"publishing to {repo_id} failed: {explain_hub_error(error, endpoint)};"
                           " nothing was recorded as published") from None


def _push_splits(rows: dict[str, list[dict]], repo_id: str, *, config_name: str, private: bool, token: str,
                 commit_message: str, say: Callable[[str], None], set_default: bool = False):
    """Push one config's splits; returns the commit info."""
    import datasets

    say(f"pushing the {config_name} config ({', '.join(f'{s} {len(r)}' for s, r in rows.items())})")
    parts = datasets.DatasetDict({s: datasets.Dataset.from_list(r) for s, r in rows.items()})
    return parts.push_to_hub(repo_id, config_name=config_name, set_default=set_default, private=private,
                             token=token, commit_message=commit_message)


def push_publication(plan: PublicationPlan, *, repo_id: str, private: bool, token: str | None,
                     progress: Progress | None = None) -> str:
    """Push every config, then the card; returns the card's commit id. Raises PublishError on any failure."""
    from huggingface_hub import DatasetCard

    say = progress or (lambda message: None)
    with _hub_repo(repo_id, private=private, token=token, say=say) as api:
        last = None
        for config in plan.configs:
            last = _push_splits(plan.rows[config], repo_id, config_name=config, private=private, token=token,
                                set_default=config == plan.facts.default_config, say=say,
                                commit_message=f"Instruct Studio: {plan.dataset} as {config}")
        say("writing the dataset card")
        existing = DatasetCard.load(repo_id, repo_type="dataset", token=token) if last is not None else None
        facts = plan.facts
        if existing is not None:
            keep = {k: v for k, v in existing.data.to_dict().items() if k == "dataset_info"}
            facts.extra_metadata = keep
        card = render_card(facts)
        info = api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=repo_id,
                               repo_type="dataset", commit_message=f"Dataset card for {plan.dataset}",
                               parent_commit=last.oid if last is not None else None)
        return info.oid


def push_config(plan: PublicationPlan, *, repo_id: str, config_name: str, card_section: tuple[str, str],
                private: bool, token: str | None, progress: Progress | None = None) -> str:
    """Push the plan's one config as `config_name` beside the repo's others (never the default), then put
    `card_section` (marker, Markdown) into the existing card, replacing the section of the same marker; returns
    the card's commit id. Raises PublishError on any failure.
    """
    from huggingface_hub import DatasetCard

    say = progress or (lambda message: None)
    with _hub_repo(repo_id, private=private, token=token, say=say) as api:
        last = _push_splits(plan.rows[plan.configs[0]], repo_id, config_name=config_name, private=private,
                            token=token, say=say,
                            commit_message=f"Instruct Studio: {plan.dataset} selection {config_name}")
        say("adding the selection to the dataset card")
        card = DatasetCard.load(repo_id, repo_type="dataset", token=token)
        marker, section = card_section
        start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
        text = card.text
        if start in text and end in text:
            text = text[:text.index(start)] + text[text.index(end) + len(end):]
        card.text = f"{text.rstrip()}\n\n{start}\n{section.strip()}\n{end}\n"
        info = api.upload_file(path_or_fileobj=str(card).encode(), path_in_repo="README.md", repo_id=repo_id,
                               repo_type="dataset", commit_message=f"Dataset card: selection {config_name}",
                               parent_commit=last.oid)
        return info.oid
