"""The local model on ONNX Runtime: the same weights, exported once from PyTorch, run without torch.

A short search query costs about 5 ms on one core with ONNX Runtime against 14 ms through
sentence-transformers on torch (bench/RESULTS.md), and batches are a few percent faster; the vectors are the
same (cosine 1.000000 against sentence-transformers on padded batches; tests/test_knowledge_embed.py). The export
needs torch once per model and torch version; it is cached under $XDG_CACHE_HOME/cogo/onnx (or
COGO_ONNX_CACHE) and written atomically, so processes starting together do not see half a file.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

EXPORT_VERSION = "1"  # bump when the export below changes


def cache_dir() -> Path:
    configured = os.environ.get("COGO_ONNX_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cogo" / "onnx"


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _export(model_dir: Path, target: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir)).eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    # Traced on a padded batch of two, so the graph keeps the attention mask path used for padding.
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])
    mask = (ids != 0).long()
    names = ["input_ids", "attention_mask", "token_type_ids"]
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent branches of the padding path
            torch.onnx.export(
                LastHiddenState(model),
                (ids, mask, torch.zeros_like(ids)),
                tmp,
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
                opset_version=17,
                dynamo=False,
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def model_file(name: str, model_dir: Path) -> Path:
    """The model's ONNX file, exported on first use."""
    from importlib.metadata import version  # not `import torch`: a process that finds the file never loads torch

    target = cache_dir() / f"{name}-torch{version('torch').split('+')[0]}-v{EXPORT_VERSION}.onnx"
    if not target.exists():
        _export(model_dir, target)
    return target


@cache
def _session(path: str, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


class OnnxEncoder:
    """Mean-pooled token states of a BERT-style sentence model (what sentence-transformers computes for
    all-MiniLM-L6-v2 before normalising)."""

    def __init__(self, name: str, model_dir: Path, threads: int, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        self._session = _session(str(model_file(name, model_dir)), threads)
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of the batch

    def encode(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch_fast(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        (states,) = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )
        weights = mask[..., None].astype(np.float32)
        return (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
