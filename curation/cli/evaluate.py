"""`evaluate` a trained model (a training job's, or REPO@REV) and list or compare training `runs` with their scores."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

from curation.cli import CommandError
from curation.cli.common import open_session


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate a trained model on the published test split")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--job", type=int, metavar="ID", help="a completed training job")
    which.add_argument("--model", metavar="REPO@REV", help="a Hub model at a revision, or a local folder")
    p.add_argument("--base", metavar="MODEL", help="the base model to compare with (default: the run's)")
    p.add_argument("--dataset", metavar="NAME", help="with --model: test on this dataset's latest publication")
    p.add_argument("--judge", metavar="LABEL", help="judge pairs with the configured model LABEL (LLM_MODELS)")
    p.add_argument("--harness", default="", metavar="TASKS",
                   help="comma-separated lm-evaluation-harness tasks; `local` builds one from the test split")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="evaluate the first N test prompts only")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: a GPU when present)")
    p.add_argument("--jobs-dir", default="data/jobs", help="where local jobs keep their logs and outputs")
    p.add_argument("--launcher", choices=("local", "hf-jobs"), default="local",
                   help="run on this machine, or as a Hugging Face Job (the model must then be on the Hub)")
    p.add_argument("--flavor", default="a10g-small", help="with --launcher hf-jobs: the hardware flavor")
    p.add_argument("--wait", action="store_true", help="print progress until it ends; exit 1 unless it completes")
    p.set_defaults(run=run_evaluate)

    p = subparsers.add_parser("runs", help="list training runs with their scores, or compare two")
    p.add_argument("--dataset", metavar="NAME")
    p.add_argument("--compare", nargs=2, type=int, metavar=("A", "B"), help="two training job ids")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_runs)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def run_evaluate(args: argparse.Namespace) -> int:
    from curation.config import Settings
    from curation.services.errors import NotFoundError, PermissionDenied
    from curation.services.evaluation import EvaluationError, refresh_evaluation, start_evaluation

    token = os.environ.get("HF_TOKEN")
    with open_session(args) as session:
        try:
            evaluation = start_evaluation(
                session, training_job_id=args.job, model=args.model, base_model=args.base, dataset=args.dataset,
                judge_label=args.judge, settings=Settings.from_env(),
                harness_tasks=[t.strip() for t in args.harness.split(",") if t.strip()], token=token,
                jobs_root=args.jobs_dir, actor=None, limit=args.limit, max_new_tokens=args.max_new_tokens,
                device=args.device, launcher=args.launcher, flavor=args.flavor)
        except (EvaluationError, NotFoundError, PermissionDenied) as error:
            raise CommandError(str(error)) from None
        print(f"evaluation {evaluation.id} {evaluation.status.value}: {evaluation.work_dir}", file=sys.stderr)
        if not args.wait:
            print(json.dumps({"evaluation": evaluation.id, "status": evaluation.status.value}))
            return 0
        shown = None
        while True:
            evaluation = refresh_evaluation(session, evaluation.id, jobs_root=args.jobs_dir, token=token)
            step = evaluation.progress or {}
            if step and step != shown:
                print(f"{step.get('stage')}: {step.get('done')}/{step.get('total')}", file=sys.stderr)
                shown = step
            if evaluation.status.value in ("completed", "failed", "cancelled"):
                break
            time.sleep(1)
        if evaluation.status.value != "completed":
            print(evaluation.log_tail[-2000:], file=sys.stderr)
        print(json.dumps({"evaluation": evaluation.id, "status": evaluation.status.value,
                          "message": evaluation.message, "metrics": evaluation.metrics}))
        return 0 if evaluation.status.value == "completed" else 1


def run_runs(args: argparse.Namespace) -> int:
    from curation.services.errors import NotFoundError
    from curation.services.evaluation import compare_runs, runs

    with open_session(args) as session:
        if args.compare:
            try:
                found = compare_runs(session, *args.compare)
            except NotFoundError as error:
                raise CommandError(str(error)) from None
            if args.json:
                print(json.dumps(dataclasses.asdict(found), indent=2, default=str))
                return 0
            print(f"run {found.a.job_id} vs run {found.b.job_id}" + (f" ({found.note})" if found.note else ""))
            for m in found.metrics:
                print(f"  {m.name:28} {_fmt(m.a):>10} {_fmt(m.b):>10}  delta {_fmt(m.delta)}")
            for pair in found.differing:
                print(f"\n[{pair.by} gap {pair.gap:.3f}] {pair.prompt}\n  reference: {pair.reference}\n"
                      f"  run {found.a.job_id}: {pair.answer_a}\n  run {found.b.job_id}: {pair.answer_b}")
            return 0
        rows = runs(session, dataset=args.dataset)
        if args.json:
            print(json.dumps([dataclasses.asdict(r) for r in rows], indent=2, default=str))
            return 0
        for r in rows:
            selection = (r.selection_recipe or {}).get("name") or "everything"
            print(f"run {r.job_id} {r.status:9} {r.method or '-':5} {r.base_model} on {r.dataset_repo}@"
                  f"{(r.dataset_revision or '-')[:10]} ({selection}, {_fmt(r.training_records)} records, "
                  f"{_fmt(r.tokens_trained)} tokens, {_fmt(r.seconds)} s): loss {_fmt(r.scores.get('loss'))}, "
                  f"ROUGE-L {_fmt(r.scores.get('rouge_l'))}, win rate vs base {_fmt(r.scores.get('win_rate_vs_base'))}")
    return 0
