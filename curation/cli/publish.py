"""`publish` a dataset to the Hub and `train` a model on its latest publication, or on a published selection's
(token from HF_TOKEN only)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from curation.cli import CommandError
from curation.cli.common import open_session

STATUS_CHOICES = ("draft", "submitted", "approved", "rejected")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("publish", help="push a dataset to the Hugging Face Hub and record its revision")
    p.add_argument("--dataset", required=True, metavar="NAME")
    p.add_argument("--repo-id", required=True, metavar="NS/NAME")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--status", nargs="+", default=["approved"], choices=STATUS_CHOICES, metavar="STATUS",
                   help="statuses to publish (default: approved; discarded never)")
    p.add_argument("--config", nargs="+", default=["messages"], choices=("messages", "alpaca", "prompt_completion"),
                   metavar="FORMAT", help="Hub configs (default: messages)")
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.set_defaults(run=run_publish)

    p = subparsers.add_parser("train", help="fine-tune a model on the dataset's latest publication "
                                                "(or a published selection's)")
    p.add_argument("--dataset", required=True, metavar="NAME")
    p.add_argument("--base-model", required=True, metavar="ID")
    p.add_argument("--launcher", default="local", choices=("local", "hf-jobs"))
    p.add_argument("--flavor", default="a10g-small", help="HF Jobs hardware (default a10g-small)")
    p.add_argument("--output-repo", default="", metavar="NS/NAME", help="push the adapter or model here")
    p.add_argument("--selection", default=None, metavar="NAME",
                   help="train on this published selection's config (its latest publication), not everything")
    p.add_argument("--method", default="lora", choices=("lora", "qlora", "full"))
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--epochs", type=float, default=None)
    p.add_argument("--jobs-dir", default="data/jobs", help="where local jobs keep their logs and outputs")
    p.add_argument("--follow", action="store_true", help="print the log until the job ends; exit 1 unless it completes")
    p.set_defaults(run=run_train)


def run_publish(args: argparse.Namespace) -> int:
    from curation.publish import PublishError
    from curation.services.publishing import publish_dataset

    token = os.environ.get("HF_TOKEN")
    with open_session(args) as session:
        try:
            publication = publish_dataset(
                session, dataset=args.dataset, repo_id=args.repo_id, token=token, private=args.private,
                statuses=args.status, configs=args.config, test_fraction=args.test_fraction,
                progress=lambda message: print(message, file=sys.stderr))
        except PublishError as error:
            raise CommandError(str(error)) from None
        print(json.dumps({"repo_id": publication.repo_id, "commit": publication.commit_id,
                          "splits": publication.split_counts, "configs": publication.configs}))
    return 0


def run_train(args: argparse.Namespace) -> int:
    from curation.services.publishing import refresh_job, start_training
    from curation.training.launchers import LaunchError

    token = os.environ.get("HF_TOKEN")
    overrides = {"method": args.method, "max_steps": args.max_steps, "epochs": args.epochs}
    with open_session(args) as session:
        try:
            job = start_training(session, dataset=args.dataset, base_model=args.base_model, launcher=args.launcher,
                                 token=token, output_repo=args.output_repo, flavor=args.flavor,
                                 jobs_root=args.jobs_dir, spec_overrides=overrides, selection=args.selection)
        except (LaunchError, ValueError) as error:
            raise CommandError(str(error)) from None
        print(f"job {job.id} {job.status.value} on {job.launcher}: {job.external_id}", file=sys.stderr)
        if not args.follow:
            print(json.dumps({"job": job.id, "status": job.status.value, "external_id": job.external_id}))
            return 0
        shown = ""
        while True:
            job = refresh_job(session, job.id, token=token, jobs_root=args.jobs_dir)
            if job.log_tail != shown:
                new = job.log_tail[len(shown):] if job.log_tail.startswith(shown) else job.log_tail
                print(new, file=sys.stderr)
                shown = job.log_tail
            if job.status.value in ("completed", "failed", "cancelled"):
                break
            time.sleep(2)
        print(json.dumps({"job": job.id, "status": job.status.value, "message": job.message,
                          "model_revision": job.model_revision, "steps": len(job.metrics)}))
        return 0 if job.status.value == "completed" else 1
