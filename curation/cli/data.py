"""import, export, stats and validate."""
from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import nullcontext
from pathlib import Path

from curation.cli import CommandError
from curation.cli.common import open_session, progress_bar
from curation.formats import EXPORT_FORMATS, IMPORT_FORMATS, FormatError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("import", help="import files or Hub datasets (hub:OWNER/NAME[@REVISION]) into a dataset")
    p.add_argument("files", nargs="+", metavar="FILE", help="a file, or hub:OWNER/NAME[@REVISION] for a Hub dataset")
    p.add_argument("--dataset", required=True, metavar="NAME")
    p.add_argument("--format", default="auto", choices=IMPORT_FORMATS)
    p.add_argument("--map", action="append", default=[], metavar="field=column",
                   help="map a table column to a record field (instruction, input, output, system, category)")
    p.add_argument("--strict", action="store_true", help="reject the whole file if any row is bad")
    p.add_argument("--keep-duplicates", action="store_true", help="store exact duplicates for a curator to resolve")
    p.add_argument("--user", default=None, help="who is importing (recorded in the history)")
    p.add_argument("--split", default="train", help="the split of a Hub dataset (default: train)")
    p.add_argument("--config", default=None, help="the config (subset) of a Hub dataset, when it has several")
    p.set_defaults(run=run_import)

    p = subparsers.add_parser("export", help="export a dataset")
    p.add_argument("--dataset", required=True, metavar="NAME")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    p.add_argument("--out", required=True, metavar="PATH")
    p.add_argument("--status", nargs="+", default=None, metavar="STATUS",
                   help="only these statuses (default: all but discarded)")
    p.set_defaults(run=run_export)

    p = subparsers.add_parser("stats", help="counts and length percentiles of a dataset")
    p.add_argument("--dataset", required=True, metavar="NAME")
    p.add_argument("--json", action="store_true")
    p.add_argument("--tokenizer", default=None, help="tokenizer that counts tokens (default: bundled MiniLM)")
    p.set_defaults(run=run_stats)

    p = subparsers.add_parser("validate", help="check Super-NaturalInstructions task files against the SNI rules")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(run=run_validate)


def _parse_mapping(pairs: list[str]) -> dict[str, str] | None:
    mapping = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field or not column:
            raise CommandError(f"--map takes field=column, got {pair!r}")
        mapping[field.strip()] = column.strip()
    return mapping or None


def run_import(args: argparse.Namespace) -> int:
    """Every file and Hub source parsed first, then one transaction; the token of a Hub source is HF_TOKEN's."""
    from curation.hub_import import HubImportError, is_hub_source, parse_source
    from curation.importer import StrictImportError
    from curation.services.importing import import_sources

    mapping = _parse_mapping(args.map)
    sources = []
    for name in args.files:
        if is_hub_source(name):
            try:
                sources.append(parse_source(name, config=args.config, split=args.split))
            except HubImportError as exc:
                raise CommandError(str(exc)) from None
        elif not Path(name).is_file():
            raise CommandError(f"{name}: no such file")
        else:
            sources.append(name)
    from_hub = any(not isinstance(source, str) for source in sources)
    reading_bar = progress_bar("reading from the Hub", unit="row") if from_hub else nullcontext(None)
    with open_session(args) as session, progress_bar("importing") as progress, reading_bar as reading:
        try:
            report = import_sources(session, dataset=args.dataset, sources=sources, format=args.format,
                                    mapping=mapping, strict=args.strict, keep_duplicates=args.keep_duplicates,
                                    token=os.environ.get("HF_TOKEN") or None, by=args.user, progress=progress,
                                    reading=(lambda done, total: reading(done, total or 0)) if reading else None)
        except (FormatError, StrictImportError, HubImportError) as exc:
            raise CommandError(str(exc)) from None
    for f in report.files:
        print(f"{f.path}: {f.format}, {f.rows_read} rows read, {f.imported} imported, "
              f"{f.duplicates_skipped} duplicates skipped, {len(f.rejected)} rejected"
              + (f", {f.tasks} task(s)" if f.tasks else ""))
        for rejected in f.rejected:
            print(f"  rejected {rejected}", file=sys.stderr)
    print(f"dataset {report.dataset!r}: {report.imported} records imported, "
          f"{report.duplicates_skipped} duplicates skipped, {report.rejected} rows rejected")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from curation.exporter import ExportError, export_dataset

    with open_session(args) as session:
        try:
            count = export_dataset(session, args.dataset, args.format, args.out, args.status)
        except (ExportError, OSError) as exc:
            raise CommandError(str(exc)) from None
    unit = "task(s)" if args.format == "sni" else "records"
    print(f"wrote {count} {unit} to {args.out}")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from curation.stats import dataset_stats

    with open_session(args) as session:
        try:
            stats = dataset_stats(session, args.dataset, args.tokenizer)
        except LookupError as exc:
            raise CommandError(str(exc).strip("'\"")) from None
    if args.json:
        print(json.dumps(stats, indent=2, ensure_ascii=False))
        return 0
    print(f"dataset {stats['dataset']}: {stats['records']} records, {stats['tasks']} tasks")
    for title, key in (("status", "by_status"), ("category", "by_category"), ("source", "by_source")):
        counts = stats[key]
        shown = list(counts.items())[:15]
        more = f" (+{len(counts) - 15} more)" if len(counts) > 15 else ""
        print(f"by {title}: " + ", ".join(f"{k} {v}" for k, v in shown) + more)
    flagged = [f"{name} {count}" for name, count in stats["flags"].items() if count]
    print("quality flags (records not discarded): " + (", ".join(flagged) or "none"))
    print("written by: " + (", ".join(f"{k} {v}" for k, v in stats["written_by"].items() if v) or "nobody yet")
          + ("; models: " + ", ".join(f"{m} {n}" for m, n in stats["models"].items()) if stats["models"] else ""))
    print(f"lengths ({stats['tokenizer']} tokens / words):")
    for field, lengths in stats["lengths"].items():
        tokens, words = lengths["tokens"], lengths["words"]
        if tokens:
            print(f"  {field:<12} tokens p50 {tokens['p50']:.0f} p90 {tokens['p90']:.0f} p99 {tokens['p99']:.0f} "
                  f"max {tokens['max']}   words p50 {words['p50']:.0f} p90 {words['p90']:.0f} "
                  f"p99 {words['p99']:.0f} max {words['max']}")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from curation.formats.containers import load
    from curation.quality.sni import validate_task

    failed = 0
    for name in args.files:
        try:
            raw = load(Path(name))
        except FormatError as exc:
            raise CommandError(str(exc)) from None
        if raw.container != "json-object":
            raise CommandError(f"{name}: is not a Super-NaturalInstructions task (expected one JSON object)")
        violations = validate_task(raw.document)
        if violations:
            failed += 1
            print(f"{name}: FAIL, {len(violations)} violation(s)")
            for violation in violations:
                print(f"  {violation}")
        else:
            print(f"{name}: ok")
    if len(args.files) > 1:
        print(f"{len(args.files) - failed} of {len(args.files)} task(s) valid")
    return 1 if failed else 0
