"""Estimated cost of embedding tokens, in USD per million tokens (list prices; local models cost nothing)."""

from __future__ import annotations

USD_PER_MILLION_TOKENS = {
    "openai:text-embedding-3-small": 0.02,
    "openai:text-embedding-3-large": 0.13,
    "openai:text-embedding-ada-002": 0.10,
}


def estimated_cost_usd(model: str, tokens: int) -> float:
    if model.startswith("local:"):
        return 0.0
    return round(tokens * USD_PER_MILLION_TOKENS.get(model, 0.02) / 1_000_000, 6)
