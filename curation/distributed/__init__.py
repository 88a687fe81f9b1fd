"""The near-duplicate search on a distributed engine: datatrove's executors run the cascade's stages over shards.

pipeline.py holds the stages (datatrove PipelineSteps), job.py the spec, the executors and the entry point
`python -m curation.distributed.job SPEC.json`, and the progress read from the engine's completion markers.
"""
