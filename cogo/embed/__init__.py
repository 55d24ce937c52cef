"""Text embedders: the local all-MiniLM-L6-v2 (default, offline) and any OpenAI-compatible endpoint.

The API is small on purpose (the knowledge and code-graph stages share it):

    from cogo.embed import get_embedder
    embedder = get_embedder("local:all-MiniLM-L6-v2")   # or "openai:text-embedding-3-small"
    vectors = embedder.embed(["some text", "more text"])  # np.ndarray (n, embedder.dims), float32, L2-normalised
    embedder.model   # the string stored in `model` columns, e.g. "local:all-MiniLM-L6-v2"
    embedder.dims    # 384
    embedder.max_input_tokens, embedder.special_tokens, embedder.chunk_budget   # 256, 2, 254
    embedder.window_tokens(["some text"])   # room taken in the window, special tokens included: [4]

`embed` raises EmbeddingError when any text fails; `embed_outcome` returns the vectors that succeeded and a
reason for each text that did not (what the embedding stage records); with `truncate=False` a text over the
window is such a failure rather than embedded cut short. `stats` counts calls and tokens, so a caller can
prove that a re-run made no embedding call.
"""

from __future__ import annotations

from cogo.embed.base import Embedder, EmbeddingError, EmbedOutcome, EmbedStats
from cogo.embed.pricing import estimated_cost_usd
from cogo.embed.registry import clear_embedders, create_embedder, get_embedder, parse_spec

__all__ = [
    "EmbedOutcome",
    "EmbedStats",
    "Embedder",
    "EmbeddingError",
    "clear_embedders",
    "create_embedder",
    "estimated_cost_usd",
    "get_embedder",
    "parse_spec",
]
