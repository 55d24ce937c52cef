"""Batch planning: which texts go together into one model or API call."""

from __future__ import annotations


def length_buckets(lengths: list[int], *, max_count: int, max_padded_tokens: int) -> list[list[int]]:
    """Indices sorted by length and cut into batches whose padded size (longest x count) stays within
    `max_padded_tokens`: similar lengths share a batch, so little compute goes to padding, and short texts
    go in large batches, long ones in small."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = max(lengths[i], 1)  # sorted ascending: the newcomer is the longest
        if current and (len(current) + 1 > max_count or longest * (len(current) + 1) > max_padded_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def token_budget_batches(lengths: list[int], *, max_count: int, max_tokens: int) -> list[list[int]]:
    """Indices in order, cut into batches of at most `max_count` texts and `max_tokens` tokens in total
    (an API's per-request limits). A text over the budget goes alone (the API decides)."""
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i, n in enumerate(lengths):
        if current and (len(current) + 1 > max_count or total + n > max_tokens):
            batches.append(current)
            current, total = [], 0
        current.append(i)
        total += n
    if current:
        batches.append(current)
    return batches
