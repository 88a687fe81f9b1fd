"""Growing a dataset with a model: Self-Instruct, Evol-Instruct and SNI task expansion, as plain Python.

Each pipeline is one function that takes a Backend (curation.llm), the cache, a Budget and two callbacks:

    report = run_self_instruct(backend, seeds, existing=[...], target=500, cache=DatabaseReplyCache(session),
                               budget=Budget(requests=2000), on_keep=write_record, kept_before=[...], stop=event)

`on_keep(candidate)` is called once per record the pipeline keeps (the job service writes it, with its
provenance, in its own transaction); every dropped candidate is counted in the report under the rule that
dropped it, with a few examples a person can read. Requests are built deterministically from the job's seed,
so a job run again after a crash or a cancel replays its cached replies for free (the candidates it kept
before arrive again and are recognised through `kept_before`, not written twice) and asks only for the rest.
Nothing here touches the database or imports gradio.
"""
from curation.generation.report import Budget, Candidate, Drop, GenerationReport

__all__ = ["Budget", "Candidate", "Drop", "GenerationReport"]
