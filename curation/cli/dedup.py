"""dedup and flags: near-duplicate groups and the quality report of a dataset."""
from __future__ import annotations

import argparse
import json

from curation.cli import CommandError
from curation.cli.common import open_session, progress_bar


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("dedup", help="exact and near-duplicate groups of a dataset")
    p.add_argument("--dataset", required=True, metavar="NAME")
    p.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="cosine at or above which records pair (default 0.95); with --lexical, ROUGE-L above "
                        "which they pair (default 0.7, Self-Instruct's rule)")
    p.add_argument("--lexical", action="store_true", help="use exact ROUGE-L instead of embeddings")
    p.add_argument("--fields", default=None, choices=["instruction", "instruction+input", "record"],
                   help="what must match (default: instruction+input; instruction with --lexical)")
    p.add_argument("--mode", default="auto", choices=["auto", "cascade", "reference"],
                   help="cascade: static vectors pick candidates, the sentence model confirms them (fast); "
                        "reference: the sentence model embeds every record; auto (default): the cascade from "
                        "10,000 records")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="groups to print (default 20)")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.add_argument("--user", default=None, help="who runs the search (recorded with it)")
    p.set_defaults(run=run_dedup)

    p = subparsers.add_parser("flags", help="quality report: how many records fail each check")
    p.add_argument("--dataset", required=True, metavar="NAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_flags)


def _short(text: str, width: int = 90) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _print_groups(title: str, groups, limit: int) -> None:
    print(f"{title}: {len(groups)} groups, {sum(len(g.records) for g in groups)} records")
    for number, group in enumerate(groups[:limit], 1):
        print(f"  group {number} (score {group.score:.3f}, keep #{group.keep_id}):")
        for r in group.records:
            suffix = f" | input: {_short(r['input'], 40)}" if r["input"] else ""
            print(f"    #{r['id']} [{r['status']}] {_short(r['instruction'])}{suffix}")
    if len(groups) > limit:
        print(f"  ... {len(groups) - limit} more (--limit, or --json for all)")


def run_dedup(args: argparse.Namespace) -> int:
    from curation.embeddings import ModelUnavailableError
    from curation.services.dedup import DedupError, run_dedup

    with open_session(args) as session, progress_bar("embedding", unit="text") as progress:
        try:
            report = run_dedup(session, dataset=args.dataset, threshold=args.threshold, fields=args.fields,
                               lexical=args.lexical, by=args.user, progress=progress, mode=args.mode)
        except (DedupError, ModelUnavailableError) as exc:
            raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return 0
    rule = ">" if report.method == "lexical" else ">="
    how = f" ({report.mode} search)" if report.mode else ""
    print(f"dataset {report.dataset}: {report.records} records searched in {report.seconds:.1f}s{how}")
    if report.carried_from is not None:  # a re-run: only what changed was searched
        print(f"only the {report.searched} records changed since search #{report.carried_from} were searched "
              "again; its other pairs were kept")
    _print_groups("exact duplicates", report.exact_groups, args.limit)
    _print_groups(f"near-duplicates ({report.method}, {report.fields}, score {rule} {report.threshold})",
                  report.groups, args.limit)
    if report.highest_score is not None:
        print(f"highest pair score: {report.highest_score:.4f}")
    return 0


def run_flags(args: argparse.Namespace) -> int:
    from curation.services.coverage import quality_report
    from curation.services.dedup import DedupError

    with open_session(args) as session:
        try:
            report = quality_report(session, dataset=args.dataset)
        except DedupError as exc:
            raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    print(f"dataset {report['dataset']}: {report['records']} records checked")
    for name, count in report["flags"].items():
        examples = ", ".join(f"#{i}" for i in report["examples"][name])
        print(f"  {name:<20} {count:>6}" + (f"   e.g. {examples}" if examples else ""))
    return 0
