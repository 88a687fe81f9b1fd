"""`draft`: a model drafts the output of many records of a dataset (resumable: replies are cached as they come)."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

from curation.cli import CommandError
from curation.cli.common import open_session, progress_bar

STATUS_CHOICES = ("draft", "submitted", "approved", "rejected", "any")
EXIT_SOME_FAILED, EXIT_STOPPED = 1, 130


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("draft", help="draft the outputs of a dataset's records with a model",
                              description="Each selected record gets the model's draft as its output (or as its "
                                          "next output). Replies are cached: running the same command again after "
                                          "a stop asks the model only for the records it did not answer yet.")
    p.add_argument("--dataset", required=True, metavar="NAME")
    p.add_argument("--user", required=True, metavar="NAME", help="who drafts: a curator or admin (in the history)")
    p.add_argument("--status", nargs="+", default=["draft"], choices=STATUS_CHOICES, metavar="STATUS",
                   help="records with these statuses (default: draft; any: all but discarded)")
    p.add_argument("--missing-outputs", action="store_true", help="only records that have no output yet")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="at most N records (the first by id)")
    p.add_argument("--model", default=None, metavar="LABEL",
                   help="a configured model by its label (default: the first of LLM_MODEL and LLM_MODELS)")
    p.add_argument("--backend", default=None, choices=("openai", "hf", "local"),
                   help="instead of --model: an ad hoc backend, with --model-name (and --base-url)")
    p.add_argument("--base-url", default="", metavar="URL", help="the ad hoc backend's endpoint")
    p.add_argument("--model-name", default=None, metavar="NAME", help="the ad hoc backend's model (local: a path)")
    p.add_argument("--concurrency", type=int, default=None, metavar="N",
                   help="requests in flight at once (default: LLM_CONCURRENCY)")
    p.add_argument("--temperature", type=float, default=0.7, metavar="T")
    p.add_argument("--max-tokens", type=int, default=512, metavar="N")
    p.set_defaults(run=run_draft)


def model_choice(args: argparse.Namespace, settings):
    """The ad hoc ModelChoice that --backend asks for, None when a configured --model is used."""
    from curation.llm.choices import ModelChoice

    if args.backend is None:
        if args.base_url or args.model_name:
            raise CommandError("--base-url and --model-name go with --backend")
        return None
    if args.model:
        raise CommandError("choose a model by --model LABEL or by --backend with --model-name, not both")
    if not args.model_name:
        raise CommandError(f"--backend {args.backend} needs --model-name")
    return ModelChoice(f"{args.model_name} ({args.backend})", args.backend, args.model_name, args.base_url,
                       settings.llm_api_key_env)


def _check_numbers(args: argparse.Namespace) -> None:
    for flag, value, lowest in (("--concurrency", args.concurrency, 1), ("--limit", args.limit, 1),
                                ("--max-tokens", args.max_tokens, 1)):
        if value is not None and value < lowest:
            raise CommandError(f"{flag} is at least {lowest}, not {value}")
    if not 0 <= args.temperature <= 2:
        raise CommandError(f"--temperature is between 0 and 2, not {args.temperature:g}")


def summary(report) -> list[str]:
    """The lines printed after a run: the counts, then each record whose draft was not written and why."""
    reasons = report.rejected_by_reason()
    rejected = f"{len(report.rejected)} rejected" + (
        " (" + ", ".join(f"{n} {reason}" for reason, n in reasons.items()) + ")" if reasons else "")
    counts = [f"{report.from_cache} from the cache", f"{report.requested} requested"]
    if report.already_there:
        counts.append(f"{report.already_there} already there")
    counts += [rejected, f"{len(report.failed)} failed"]
    cost = f", ${report.cost:.4f}" if report.cost is not None else ""
    lines = [f"{'stopped: ' if report.stopped else ''}drafted {report.written} of {report.selected} records of "
             f"{report.dataset} with {report.model}: " + ", ".join(counts),
             f"{report.prompt_tokens:,} prompt and {report.completion_tokens:,} completion tokens{cost}"
             f" in {report.seconds:.1f} s"]
    lines += [f"  record {record_id}: rejected, {reason}" for record_id, reason in report.rejected]
    lines += [f"  record {record_id}: failed, {message}" for record_id, message in report.failed]
    if report.stopped:
        lines.append("run the same command again to draft the rest (the replies so far come from the cache)")
    return lines


@contextmanager
def stop_on_interrupt(stop: threading.Event) -> Iterator[None]:
    """While the block runs, a first Ctrl-C lets the requests in flight finish and be saved; a second stops now."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only
        return
    previous = signal.getsignal(signal.SIGINT) or signal.default_int_handler

    def first(signum, frame) -> None:
        print("stopping after the requests in flight (Ctrl-C again to stop now)", file=sys.stderr)
        stop.set()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _line_progress(description: str):
    """A (done, total) callback printing a line at every tenth (for logs: a terminal has the bar)."""
    shown = [-1]

    def update(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth != shown[0]:
            shown[0] = tenth
            print(f"{description}: {done} of {total}", file=sys.stderr)
    return update


def run_draft(args: argparse.Namespace) -> int:
    from curation.config import Settings
    from curation.drafting import Sampling
    from curation.services.admin import actor_for
    from curation.services.bulk_drafting import draft_outputs
    from curation.services.errors import InvalidInput, PermissionDenied

    _check_numbers(args)
    settings = Settings.from_env(database_url=args.db)
    choice = model_choice(args, settings)
    sampling = Sampling(temperature=args.temperature, max_tokens=args.max_tokens)
    statuses = None if "any" in args.status else args.status
    stop = threading.Event()
    with open_session(args) as session:
        actor = actor_for(session, args.user)
        if actor is None:
            raise CommandError(f"there is no user named {args.user!r} (add one with `python -m curation users add`)")
        print(f"drafting outputs of {args.dataset} as {actor.name}", file=sys.stderr)
        try:
            with stop_on_interrupt(stop), progress_bar("drafting") as bar:
                lines = _line_progress("drafted") if not sys.stderr.isatty() else None
                report = draft_outputs(session, actor, settings, dataset=args.dataset, model_label=args.model,
                                       choice=choice, statuses=statuses, missing_outputs=args.missing_outputs,
                                       limit=args.limit, concurrency=args.concurrency, sampling=sampling,
                                       progress=lines or bar, stop=stop)
        except (InvalidInput, PermissionDenied) as error:
            raise CommandError(str(error)) from None
        except KeyboardInterrupt:
            print("interrupted: the records drafted so far are saved; run the same command again for the rest",
                  file=sys.stderr)
            return EXIT_STOPPED
    for line in summary(report):
        print(line)
    if report.stopped:
        return EXIT_STOPPED
    return EXIT_SOME_FAILED if report.failed else 0
