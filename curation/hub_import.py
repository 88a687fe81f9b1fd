"""A dataset on the Hugging Face Hub as records: read at a resolved commit, so a re-import reads the same rows.

`hub:OWNER/NAME[@REVISION]` names a source; the revision (a branch, a tag or a commit; the default branch when
none is given) is resolved to its commit first, and the rows are streamed from that commit by `datasets`, with
progress, so no Arrow copy of a large dataset is written to the cache. The rows then go through the file readers
(curation.formats), so a Hub import follows the same format detection, column mapping and row rules as a file, and
like a file it is read whole before anything is stored. Private repos take the token publishing takes (HF_TOKEN,
or the one typed for the action).
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import orjson

from curation.formats import FormatError, ParsedFile, RejectedRow, read_file

PREFIX = "hub:"
ROW_FORMATS = ("auto", "alpaca", "dolly", "self-instruct", "sharegpt", "messages", "prompt-completion")
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
RowsRead = Callable[[int, int | None], None]  # (rows read, rows in the split when the Hub says)


class HubImportError(Exception):
    """The Hub source cannot be imported; the message is one sentence saying why."""


@dataclass(frozen=True)
class HubSource:
    repo_id: str
    revision: str | None = None  # as asked: a branch, a tag or a commit id; None is the default branch
    config: str | None = None
    split: str = "train"

    @property
    def label(self) -> str:
        return f"{PREFIX}{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


def is_hub_source(text: str | Path) -> bool:
    return isinstance(text, str) and text.startswith(PREFIX)


def parse_source(text: str, *, config: str | None = None, split: str | None = None) -> HubSource:
    """The source `hub:OWNER/NAME[@REVISION]` names; HubImportError when it is not one."""
    spec = text.removeprefix(PREFIX).strip()
    repo_id, _, revision = spec.partition("@")
    if not REPO_ID.fullmatch(repo_id):
        raise HubImportError(f"{text!r} is not a Hub dataset: write hub:OWNER/NAME or hub:OWNER/NAME@REVISION")
    if "@" in spec and not revision.strip():
        raise HubImportError(f"{text!r} names no revision after '@'")
    return HubSource(repo_id, revision.strip() or None, (config or "").strip() or None,
                     (split or "").strip() or "train")


def resolve_revision(source: HubSource, token: str | None) -> str:
    """The commit id the source's revision points at now; HubImportError in words when there is none."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    api = HfApi(token=token)
    try:
        return api.dataset_info(source.repo_id, revision=source.revision, token=token).sha
    except RepositoryNotFoundError:
        if not token:
            raise HubImportError(f"dataset {source.repo_id} was not found on the Hub: it does not exist, or it is "
                                 "private and no token was given (set HF_TOKEN, or type a token)") from None
        raise HubImportError(f"dataset {source.repo_id} was not found on the Hub "
                             "(or the token may not read it)") from None
    except RevisionNotFoundError:
        raise HubImportError(f"dataset {source.repo_id} has no revision {source.revision!r}"
                             f"{_known_refs(api, source, token)}") from None
    except Exception as error:  # noqa: BLE001 - every other failure is one sentence too
        raise HubImportError(f"reading {source.repo_id} from the Hub failed: {_explain(error)}") from None


def _known_refs(api, source: HubSource, token: str | None) -> str:
    """ (branches: main; tags: v1), or nothing when the refs cannot be listed."""
    try:
        refs = api.list_repo_refs(source.repo_id, repo_type="dataset", token=token)
    except Exception:  # noqa: BLE001 - the message is still right without them
        return ""
    tags = f"; tags: {', '.join(t.name for t in refs.tags)}" if refs.tags else ""
    return f" (branches: {', '.join(b.name for b in refs.branches)}{tags})"


def _explain(error: Exception) -> str:
    from curation.publish import explain_hub_error
    from huggingface_hub import constants

    if type(error).__name__ == "OfflineModeIsEnabled":
        return "this machine is offline (HF_HUB_OFFLINE is set)"
    return explain_hub_error(error, constants.ENDPOINT)


def stream_rows(source: HubSource, commit: str, token: str | None, progress: RowsRead | None = None) -> list[dict]:
    """Every row of the source's split at `commit`, as plain JSON values (class labels by their names)."""
    import datasets

    try:
        rows = datasets.load_dataset(source.repo_id, source.config, split=source.split, revision=commit,
                                     token=token, streaming=True)
        splits = rows.info.splits or {}
        total = splits[source.split].num_examples if source.split in splits else None
        labels = {name: feature for name, feature in (rows.features or {}).items()
                  if isinstance(feature, datasets.ClassLabel)}
        read = []
        for row in rows:
            for name, feature in labels.items():
                if isinstance(row.get(name), int):
                    row[name] = feature.int2str(row[name]) if row[name] >= 0 else None
            read.append(row)
            if progress and (len(read) % 1000 == 0):
                progress(len(read), total)
    except ValueError as error:  # datasets says which configs or splits there are
        raise HubImportError(f"{source.repo_id}: {_first_lines(error)}") from None
    except Exception as error:  # noqa: BLE001 - every failure is one sentence
        raise HubImportError(f"reading {source.repo_id} from the Hub failed: {_explain(error)}") from None
    if progress:
        progress(len(read), total)
    return read


def _first_lines(error: Exception) -> str:
    # "Config name is missing.\nPlease pick one among the available configs: [...]\nExample of usage: ..."
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(line for line in lines[:2]).rstrip(".")


def read_hub(source: HubSource, *, token: str | None, format: str = "auto", mapping: dict[str, str] | None = None,
             progress: RowsRead | None = None) -> tuple[ParsedFile, dict]:
    """The source's rows parsed as a file's would be, and where they came from: {"hub", "revision", "config",
    "split"} with the resolved commit. Each record's source_line is its row in the split (from 0)."""
    if format not in ROW_FORMATS:
        raise HubImportError(f"a Hub dataset is read as rows: choose the format auto or one of "
                             f"{', '.join(ROW_FORMATS[1:])}, not {format!r}")
    commit = resolve_revision(source, token)
    rows = stream_rows(source, commit, token, progress)
    label = f"{PREFIX}{source.repo_id}@{commit}"
    if not rows:
        raise HubImportError(f"{source.label} has no rows in split {source.split!r}"
                             + (f" of config {source.config!r}" if source.config else ""))
    with tempfile.TemporaryDirectory(prefix="hub-import-") as folder:
        # A JSON array, not JSONL: a one-row JSONL file would read as a single JSON object.
        path = Path(folder) / "rows.json"
        path.write_bytes(b"[" + b",\n".join(orjson.dumps(row, default=str) for row in rows) + b"]")
        try:
            parsed = read_file(path, format=format, mapping=mapping)
        except FormatError as error:
            raise FormatError(label, error.problem) from None
    parsed.path = label
    parsed.format = f"hub:{parsed.format}"
    parsed.rejected = [RejectedRow(r.location.replace("index", "row"), r.reason) for r in parsed.rejected]
    for draft in parsed.records:
        draft.source_file = f"{PREFIX}{source.repo_id}"
    return parsed, {"hub": source.repo_id, "revision": commit, "config": source.config, "split": source.split}
