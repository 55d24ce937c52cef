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
    # What window_tokens counts, for failure reasons ("tokens", or the bound used instead of them).
    window_unit = "tokens"

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

    @property
    @abstractmethod
    def max_input_tokens(self) -> int:
        """The model's window: the most tokens of one input it reads, its special tokens included."""

    @property
    def special_tokens(self) -> int:
        """Tokens the model adds to every input (e.g. [CLS] and [SEP]); they take room in the window."""
        return 0

    @property
    def chunk_budget(self) -> int:
        """The most content tokens one text may have for the model to read it whole."""
        return self.max_input_tokens - self.special_tokens

    @abstractmethod
    def window_tokens(self, texts: list[str]) -> list[int]:
        """Room each text takes in the window, special tokens included: the model's own count, or an upper
        bound of it where its tokenizer is not available. Never less than what the model would read."""

    def over_window(self, texts: list[str]) -> dict[int, str]:
        """Texts the model would not read whole, by index, with the reason."""
        return {
            i: f"{n} {self.window_unit} is over {self.model}'s {self.max_input_tokens}-token window (special tokens "
            "included): not embedded rather than truncated"
            for i, n in enumerate(self.window_tokens(texts))
            if n > self.max_input_tokens
        }

    @abstractmethod
    def _embed_outcome(self, texts: list[str]) -> EmbedOutcome: ...

    def embed_outcome(self, texts: list[str], *, truncate: bool = True) -> EmbedOutcome:
        """`truncate=False`: a text over the window is a failure with the reason and is not sent, so that stored
        vectors always stand for their whole text (a query may well be cut instead)."""
        if not texts:
            return EmbedOutcome(np.zeros((0, self.dims), dtype=np.float32), {}, 0)
        refused = {} if truncate else self.over_window(texts)
        if not refused:
            return self._embed_outcome(texts)
        return self._embed_fitting(texts, refused)

    def _embed_fitting(self, texts: list[str], refused: dict[int, str]) -> EmbedOutcome:
        keep = [i for i in range(len(texts)) if i not in refused]
        inner = self._embed_outcome([texts[i] for i in keep]) if keep else None
        dims = inner.vectors.shape[1] if inner is not None else (self.dims_if_known() or 1)
        vectors = np.zeros((len(texts), dims), dtype=np.float32)
        failures = dict(refused)
        if inner is not None:
            vectors[keep] = inner.vectors
            failures.update({keep[j]: reason for j, reason in inner.failures.items()})
        return EmbedOutcome(vectors, dict(sorted(failures.items())), inner.tokens if inner is not None else 0)

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
