"""The embedders: OpenAI-compatible against a local server speaking the embeddings API (batching, 429 with
Retry-After, 500, a rejected input), the local all-MiniLM-L6-v2 offline, and batch planning."""

from __future__ import annotations

import numpy as np
import pytest

from cogo.embed import EmbeddingError, get_embedder, parse_spec
from cogo.embed.batching import length_buckets, token_budget_batches
from cogo.embed.openai_compat import OpenAIEmbedder, parse_retry_after
from tests.embeddings_server import embeddings_server, fake_vector


def _embedder(url: str, sleeps: list[float], **kw: object) -> OpenAIEmbedder:
    return OpenAIEmbedder("text-embedding-3-small", api_key="sk-test", base_url=url, sleep=sleeps.append, **kw)


def test_openai_embeds_in_order_normalised_and_batched_by_count_and_tokens() -> None:
    texts = [f"text number {i} " * (i % 7 + 1) for i in range(25)]
    with embeddings_server(dims=16) as server:
        embedder = _embedder(server.url, [], max_inputs=10, max_tokens=10_000)
        vectors = embedder.embed(texts)
        assert vectors.shape == (25, 16)
        expected = np.asarray(fake_vector(texts[7], 16))
        assert np.allclose(vectors[7], expected / np.linalg.norm(expected), atol=1e-5)
        assert [len(r["body"]["input"]) for r in server.requests] == [10, 10, 5]
        assert server.requests[0]["auth"] == "Bearer sk-test"
        assert embedder.stats.calls == 3
        # Token budget: three long texts that fit two per request.
        server.requests.clear()
        long = ["word " * 300] * 3  # about 500 tokens each by the byte estimate
        _embedder(server.url, [], max_inputs=100, max_tokens=1100).embed(long)
        assert [len(r["body"]["input"]) for r in server.requests] == [2, 1]


def test_openai_retries_429_honouring_retry_after_and_500_with_backoff() -> None:
    sleeps: list[float] = []
    with embeddings_server(dims=8) as server:
        server.script = [(429, {"Retry-After": "7"}), (500, {}), (503, {"Retry-After": "0"})]
        embedder = _embedder(server.url, sleeps, backoff_base_s=0.25)
        vectors = embedder.embed(["a", "b"])
        assert vectors.shape == (2, 8)
        assert server.statuses == [429, 500, 503, 200]
        assert sleeps[0] == 7.0  # what Retry-After asked
        assert 0 < sleeps[1] <= 0.5  # backoff with jitter, no header
        assert sleeps[2] == 0.0
        assert embedder.stats.retries == 3


def test_openai_gives_up_after_retries_and_reports_every_text() -> None:
    with embeddings_server(dims=8) as server:
        server.script = [(500, {})] * 3
        embedder = _embedder(server.url, [], max_retries=2)
        outcome = embedder.embed_outcome(["a", "b", "c"])
        assert set(outcome.failures) == {0, 1, 2}
        assert "gave up after 2 retries" in outcome.failures[0] and "HTTP 500" in outcome.failures[0]
        server.script = [(500, {})]
        with pytest.raises(EmbeddingError, match="1 of 1 texts failed"):
            _embedder(server.url, [], max_retries=0).embed(["x"])


def test_openai_isolates_a_rejected_input_and_embeds_the_rest() -> None:
    with embeddings_server(dims=8) as server:
        server.reject = {"poison"}
        outcome = _embedder(server.url, []).embed_outcome(["ok 1", "ok 2", "poison", "ok 3"])
        assert list(outcome.failures) == [2]
        assert "HTTP 400" in outcome.failures[2] and "input rejected" in outcome.failures[2]
        assert np.allclose(np.linalg.norm(outcome.vectors[[0, 1, 3]], axis=1), 1.0, atol=1e-5)


def test_retry_after_parses_seconds_and_http_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_local_model_loads_offline_and_ranks_meaning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    embedder = get_embedder("local:all-MiniLM-L6-v2")
    assert (embedder.model, embedder.dims) == ("local:all-MiniLM-L6-v2", 384)
    vectors = embedder.embed(["How do refresh tokens rotate?", "Refresh tokens are rotated on each use.", "Tofu"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    # Bucketed batches give the same vectors as one text at a time.
    single = embedder.embed(["Tofu"])
    assert np.allclose(single[0], vectors[2], atol=1e-4)


def test_batch_planning() -> None:
    lengths = [5, 200, 6, 190, 7, 5]
    buckets = length_buckets(lengths, max_count=10, max_padded_tokens=400)
    assert buckets == [[0, 5, 2, 4], [3, 1]]
    assert sorted(i for b in buckets for i in b) == list(range(6))
    assert token_budget_batches([3, 3, 3, 10, 1], max_count=2, max_tokens=8) == [[0, 1], [2], [3], [4]]
    assert parse_spec("openai:text-embedding-3-small") == ("openai", "text-embedding-3-small")
    with pytest.raises(ValueError):
        parse_spec("cohere:embed")


def test_local_model_threads_come_from_cogo_embed_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from cogo.embed.local import torch_threads

    monkeypatch.delenv("COGO_EMBED_THREADS", raising=False)
    assert torch_threads() == max(1, os.cpu_count() or 1)
    monkeypatch.setenv("COGO_EMBED_THREADS", "1")
    assert torch_threads() == 1
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("COGO_EMBED_THREADS", bad)
        with pytest.raises(ValueError, match="COGO_EMBED_THREADS"):
            torch_threads()


def test_local_model_on_onnx_runtime_gives_the_torch_vectors(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from cogo.embed.local import LocalEmbedder

    texts = [
        "refresh token rotation",
        "How is the session cache invalidated when a user signs out of every device at once?",
        "x",
        "a much longer passage " * 200,  # past the model's 256 tokens: truncated alike
        "ünïcödé and emoji 🚀 text",
    ]
    monkeypatch.setenv("COGO_ONNX_CACHE", str(tmp_path))
    monkeypatch.setenv("COGO_LOCAL_RUNTIME", "onnx")
    onnx = LocalEmbedder()
    assert onnx.runtime == "onnx"
    on_onnx = onnx.embed(texts)  # one padded batch per length bucket
    assert list(tmp_path.glob("all-MiniLM-L6-v2-*.onnx"))  # exported once, cached
    monkeypatch.setenv("COGO_LOCAL_RUNTIME", "torch")
    on_torch = LocalEmbedder().embed(texts)
    assert on_onnx.shape == on_torch.shape == (5, 384)
    assert np.min(np.sum(on_onnx * on_torch, axis=1)) > 0.99999
    assert np.allclose(np.linalg.norm(on_onnx, axis=1), 1.0, atol=1e-5)
    monkeypatch.setenv("COGO_LOCAL_RUNTIME", "tensorflow")
    with pytest.raises(ValueError, match="COGO_LOCAL_RUNTIME"):
        assert LocalEmbedder().runtime
