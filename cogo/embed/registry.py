"""Embedders by spec string (`local:<name>` or `openai:<model>`), one instance per spec and endpoint per
process, so the local model is loaded once."""

from __future__ import annotations

import os
import threading

from cogo.embed.base import Embedder

_instances: dict[tuple[str, str], Embedder] = {}
_lock = threading.Lock()


def parse_spec(spec: str) -> tuple[str, str]:
    provider, sep, name = spec.partition(":")
    if not sep or provider not in ("local", "openai") or not name:
        raise ValueError(f"embedder {spec!r}: expected 'local:<model>' or 'openai:<model>'")
    return provider, name


def create_embedder(spec: str, *, api_key: str | None = None, base_url: str | None = None) -> Embedder:
    """A new embedder. OpenAI's key and endpoint fall back to OPENAI_API_KEY / OPENAI_BASE_URL."""
    provider, name = parse_spec(spec)
    if provider == "local":
        from cogo.embed.local import LocalEmbedder

        return LocalEmbedder(name)
    from cogo.embed.openai_compat import OpenAIEmbedder

    return OpenAIEmbedder(
        name,
        api_key=api_key or os.environ.get("OPENAI_API_KEY"),
        base_url=base_url or os.environ.get("OPENAI_BASE_URL"),
    )


def get_embedder(spec: str, *, api_key: str | None = None, base_url: str | None = None) -> Embedder:
    """The process's shared embedder for `spec` (created on first use)."""
    key = (spec, base_url or os.environ.get("OPENAI_BASE_URL", ""))
    with _lock:
        if key not in _instances:
            _instances[key] = create_embedder(spec, api_key=api_key, base_url=base_url)
        return _instances[key]


def clear_embedders() -> None:
    with _lock:
        _instances.clear()
