"""A distributed near-duplicate search: its spec, the engine's executors for it, its progress, and its entry point.

    python -m curation.distributed.job SPEC.json

runs the four stages (pipeline.py) with datatrove executors chained by `depends`, so the engine, not us, holds
the pool, the scheduling and the retries. Progress is read from the engine's own completion markers
(logs/<stage>/completions/<rank>), so anyone who can read the job folder can follow it.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

EXECUTORS = ("local", "slurm", "hf-jobs")
STAGES = ("static", "candidates", "sentence", "pairs")  # in order; static and sentence run one task per shard
FAILED = "DISTRIBUTED SEARCH FAILED: "  # the line the studio reads a failure's reason from


@dataclass
class SearchJob:
    work_dir: str  # the job folder: texts/ in, pairs/ out, logs/ for the engine
    tasks: int = 2  # text shards, and tasks of the per-shard stages
    workers: int = -1  # tasks run at once by the local executor (-1: all)
    executor: str = "local"  # local | slurm | hf-jobs
    floor: float = 0.90  # pairs kept down to this cosine (DedupRun.floor)
    model: str = "sentence-transformers/all-MiniLM-L6-v2"  # the sentence model (the static one is distilled from it)
    precision: str = "fp32"
    device: str | None = None  # the sentence model's device (None: a GPU when present)
    parts: list[str] = field(default_factory=lambda: ["instruction", "input"])  # what each record's parts are
    partition: str | None = None  # slurm: the partition
    time: str = "02:00:00"  # slurm: the time limit of each stage's job array
    flavor: str = "cpu-basic"  # hf-jobs: the hardware flavor
    logs_root: str | None = None  # hf-jobs: a remote folder (hf://datasets/...) the Jobs and we both reach

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> "SearchJob":
        return cls(**json.loads(Path(path).read_text()))


def shard_name(rank: int) -> str:
    return f"{rank:05d}"


def stage_tasks(job: SearchJob, stage: str) -> int:
    return job.tasks if stage in ("static", "sentence") else 1


def executors(job: SearchJob) -> list:
    """The engine's executors of the four stages, each depending on the one before; run the last to run them all."""
    from curation.distributed import pipeline

    steps = {"static": pipeline.StaticVectors, "candidates": pipeline.Candidates,
             "sentence": pipeline.SentenceVectors, "pairs": pipeline.Pairs}
    spec, chain, previous = asdict(job), [], None
    for stage in STAGES:
        tasks = stage_tasks(job, stage)
        kwargs = dict(pipeline=[steps[stage](spec)], tasks=tasks, depends=previous,
                      logging_dir=f"{job.logs_root or Path(job.work_dir) / 'logs'}/{stage}")
        if job.executor == "local":
            from datatrove.executor import LocalPipelineExecutor

            workers = tasks if job.workers == -1 else min(job.workers, tasks)
            previous = LocalPipelineExecutor(**kwargs, workers=workers)
        elif job.executor == "slurm":
            # Thin and untested here (no Slurm on this machine): the job folder must be on a file system the
            # nodes share, and the app's venv on them; sbatch arrays, requeues and dependencies are Slurm's.
            from datatrove.executor import SlurmPipelineExecutor

            if not job.partition:
                raise ValueError("a Slurm search needs a partition")
            previous = SlurmPipelineExecutor(**kwargs, time=job.time, partition=job.partition,
                                             job_name=f"dedup-{stage}", venv_path=str(Path(sys.prefix)))
        elif job.executor == "hf-jobs":
            # Thin and untested here (no network): datatrove refuses a local logging_dir for Jobs, so logs_root
            # must be remote, and the texts must be readable by the Jobs too (a follow-up: shards on the Hub).
            from datatrove.executor.jobs import JobsPipelineExecutor

            previous = JobsPipelineExecutor(**kwargs, flavor=job.flavor, dependencies=["model2vec",
                                            "sentence-transformers", "pyarrow"], job_name=f"dedup-{stage}")
        else:
            raise ValueError(f"unknown executor {job.executor!r}: choose one of {', '.join(EXECUTORS)}")
        chain.append(previous)
    return chain


def progress(work_dir: str | Path) -> dict:
    """{"stage", "done", "total", "finished"}: the first stage with tasks left, and how many of its tasks are done."""
    work = Path(work_dir)
    job = SearchJob.load(work / "spec.json")
    for stage in STAGES:
        total = stage_tasks(job, stage)
        completions = work / "logs" / stage / "completions"
        done = len(list(completions.iterdir())) if completions.is_dir() else 0
        if done < total:
            return {"stage": stage, "done": done, "total": total, "finished": False}
    return {"stage": "pairs", "done": 1, "total": 1, "finished": True}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m curation.distributed.job SPEC.json", file=sys.stderr)
        return 2
    job = SearchJob.load(Path(argv[0]))
    try:
        executors(job)[-1].run()
    except Exception as exc:  # the engine has logged the traceback; the studio shows this one line
        print(f"{FAILED}{type(exc).__name__}: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
