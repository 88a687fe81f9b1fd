"""score and select: scores per record (LLM judge, IFD, cheap signals) and selections to a budget."""
from __future__ import annotations

import argparse
import json

from curation.cli import CommandError
from curation.cli.common import open_session, progress_bar


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("score", help="score a dataset's records: LLM judge, IFD, cheap signals")
    p.add_argument("--dataset", required=True, metavar="NAME")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--judge", metavar="LABEL", help="rate with the configured model LABEL (AlpaGasus, 0 to 5)")
    what.add_argument("--ifd", metavar="MODEL", help="IFD and perplexity with this causal LM (folder or Hub name)")
    what.add_argument("--signals", action="store_true", help="length, MTLD, language, nearest-neighbour distance")
    p.add_argument("--batch-size", type=int, default=32, help="records per IFD batch (default 32)")
    p.add_argument("--device", default=None, help="IFD device (default: cuda when present, else cpu)")
    p.add_argument("--threads", type=int, default=None,
                   help="IFD torch CPU threads (default torch's; 1 ran 2.4x faster when other work shares the CPUs)")
    p.add_argument("--concurrency", type=int, default=8, help="judge requests in flight (default 8)")
    p.set_defaults(run=run_score)

    p = subparsers.add_parser("select", help="select records to a budget; `select list`, `select compare A B`, "
                                             "`select publish NAME --repo-id R`")
    p.add_argument("action", nargs="*", metavar="list | compare A B | publish NAME",
                   help="nothing to make a selection; list the selections; compare two by name; publish one as "
                        "its own Hub config (token from HF_TOKEN)")
    p.add_argument("--dataset", required=True, metavar="NAME")
    p.add_argument("--name", help="the new selection's name")
    p.add_argument("--score", default="judge", metavar="NAME[:WEIGHT],...",
                   help="score to order by, or a weighted combination, e.g. judge:1,ifd:0.5 (default judge)")
    p.add_argument("--method", default="deita", choices=["deita", "top", "threshold"])
    p.add_argument("--n", type=int, default=None, help="how many records to take")
    p.add_argument("--threshold", type=float, default=0.1,
                   help="DEITA: least cosine distance to every record already taken (default 0.1)")
    p.add_argument("--min", type=float, default=None, dest="minimum", help="threshold method: least score")
    p.add_argument("--replace", action="store_true", help="replace a selection of the same name")
    p.add_argument("--repo-id", help="publish: the Hub dataset repo (namespace/name)")
    p.add_argument("--format", default="messages", choices=["messages", "alpaca", "prompt_completion"],
                   help="publish: the rows' format (default messages)")
    p.add_argument("--private", action="store_true", help="publish: create the repo private")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_select)


def weights_of(text: str) -> dict[str, float]:
    """{score name: weight} from "judge" or "judge:1,ifd:-0.5"."""
    from curation.selection import parse_weights

    try:
        return parse_weights(text)
    except ValueError as error:
        raise CommandError(f"--score {error}") from None


def run_score(args: argparse.Namespace) -> int:
    from curation.config import Settings
    from curation.embeddings import ModelUnavailableError
    from curation.services.annotation import InvalidInput
    from curation.services.drafting import backend_of
    from curation.services.scores import ScoreError, score_ifd, score_signals, score_with_judge

    with open_session(args) as session, progress_bar("scoring") as progress:
        try:
            if args.judge:
                _, backend = backend_of(Settings.from_env(database_url=args.db), args.judge)
                run = score_with_judge(session, dataset=args.dataset, backend=backend, actor=None,
                                       concurrency=args.concurrency, progress=progress)
            elif args.ifd:
                if args.threads:
                    import torch

                    torch.set_num_threads(args.threads)
                run = score_ifd(session, dataset=args.dataset, model=args.ifd, actor=None,
                                batch_size=args.batch_size, device=args.device, progress=progress)
            else:
                run = score_signals(session, dataset=args.dataset, actor=None)
        except (ScoreError, InvalidInput, ModelUnavailableError) as error:
            raise CommandError(str(error)) from None
    failed = f", {run.failed} without a readable rating" if run.failed else ""
    print(f"dataset {run.dataset}: {', '.join(run.names)} computed for {run.computed} records, "
          f"{run.reused} unchanged{failed} ({run.seconds:.1f}s)")
    return 0


def _line(s) -> str:
    recipe = s.recipe
    by = ",".join(f"{k}:{v:g}" for k, v in recipe["weights"].items())
    rule = {"deita": f"DEITA n={recipe['n']} distance>{recipe['threshold']}", "top": f"top {recipe['n']}",
            "threshold": f"score>={recipe['minimum']}"}[recipe["method"]]
    return f"{s.name}: {s.size} records, {rule} by {by}, revision {s.revision}, {s.created_at}"


def run_select(args: argparse.Namespace) -> int:
    import os

    from curation.publish import PublishError
    from curation.services.selections import compare_selections, publish_selection, run_selection, selections
    from curation.services.scores import ScoreError

    action = args.action
    with open_session(args) as session:
        try:
            if action == ["list"]:
                found = selections(session, dataset=args.dataset)
                if args.json:
                    print(json.dumps([s.__dict__ for s in found], indent=2))
                for s in [] if args.json else found:
                    print(_line(s))
                return 0
            if len(action) == 3 and action[0] == "compare":
                c = compare_selections(session, dataset=args.dataset, a=action[1], b=action[2])
                print(f"{c.a.name}: {c.a.size}, {c.b.name}: {c.b.size}, both: {len(c.both)}, "
                      f"only {c.a.name}: {len(c.only_a)}, only {c.b.name}: {len(c.only_b)}, jaccard {c.jaccard:.3f}")
                return 0
            if len(action) == 2 and action[0] == "publish":
                if not args.repo_id:
                    raise CommandError("--repo-id names the Hub dataset to publish to")
                done = publish_selection(session, dataset=args.dataset, name=action[1], repo_id=args.repo_id,
                                         token=os.environ.get("HF_TOKEN"), private=args.private,
                                         config_format=args.format)
                print(json.dumps({"selection": done.name, "repo_id": done.repo_id, "commit": done.commit_id,
                                  "records": done.records, "publication": done.publication_id}))
                return 0
            if action:
                raise CommandError("select takes no argument, `list`, `compare A B` or `publish NAME`")
            if not args.name:
                raise CommandError("--name the selection")
            made = run_selection(session, dataset=args.dataset, name=args.name, weights=weights_of(args.score),
                                 method=args.method, n=args.n, threshold=args.threshold, minimum=args.minimum,
                                 actor=None, replace=args.replace)
        except (ScoreError, PublishError) as error:
            raise CommandError(str(error)) from None
    print(json.dumps(made.__dict__, indent=2) if args.json else f"{_line(made)} ({made.seconds:.1f}s)")
    return 0
