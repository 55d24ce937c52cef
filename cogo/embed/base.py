"""The embedder interface and the bookkeeping every provider shares."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np


class EmbeddingError(RuntimeError):
    """Some texts could not be embedded; `failures` maps their index to the reason."""

    def __init__(self, message: str, failures: dict[int, str] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or {}


@dataclass
class EmbedStats:
    """Counters since the embedder was created (or reset): model/API calls, texts sent, tokens."""

    calls: int = 0
    texts: int = 0
    tokens: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, calls: int = 0, texts: int = 0, tokens: int = 0, retries: int = 0) -> None:
        with self._lock:
            self.calls += calls
            self.texts += texts
            self.tokens += tokens
            self.retries += retries

    def snapshot(self) -> dict[str, int]:
        return {"calls": self.calls, "texts": self.texts, "tokens": self.tokens, "retries": self.retries}


@dataclass
class EmbedOutcome:
    """vectors[i] is valid where i not in failures (failed rows are zeros)."""

    vectors: np.ndarray
    failures: dict[int, str]
    tokens: int


class Embedder(ABC):
    """An embedding model. Subclasses implement `_embed_outcome`; vectors are float32 and L2-normalised."""

    model: str

    def __init__(self, model: str) -> None:
        self.model = model
        self.stats = EmbedStats()

    @property
    @abstractmethod
    def dims(self) -> int: ...

    def dims_if_known(self) -> int:
        """The dimension without calling the model (0 when only a call would tell)."""
        return self.dims

    @abstractmethod
    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text as this model counts them (an estimate where the tokenizer is not available)."""

    @abstractmethod
    def _embed_outcome(self, texts: list[str]) -> EmbedOutcome: ...

    def embed_outcome(self, texts: list[str]) -> EmbedOutcome:
        if not texts:
            return EmbedOutcome(np.zeros((0, self.dims), dtype=np.float32), {}, 0)
        return self._embed_outcome(texts)

    def embed(self, texts: list[str]) -> np.ndarray:
        outcome = self.embed_outcome(texts)
        if outcome.failures:
            first = next(iter(outcome.failures.values()))
            raise EmbeddingError(f"{len(outcome.failures)} of {len(texts)} texts failed: {first}", outcome.failures)
        return outcome.vectors


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms
