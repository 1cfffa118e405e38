"""Grouping a stream of images into batches of one size, so folders of mixed sizes still batch without resizing."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def group_by_size(items: Iterable[T], size_of: Callable[[T], Hashable], batch_size: int,
                  max_pending: int | None = None) -> Iterator[list[T]]:
    """Yield lists of up to `batch_size` items of equal size; every item comes out exactly once.

    At most `max_pending` items (default 4 x batch_size) wait for company; beyond that the largest waiting group
    goes out early, so a folder of all-different sizes holds little memory and still flows.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    max_pending = 4 * batch_size if max_pending is None else max_pending
    pending: dict[Hashable, list[T]] = {}
    waiting = 0
    for item in items:
        key = size_of(item)
        group = pending.setdefault(key, [])
        group.append(item)
        waiting += 1
        if len(group) == batch_size or waiting > max_pending:
            key = key if len(group) == batch_size else max(pending, key=lambda k: len(pending[k]))
            group = pending.pop(key)
            waiting -= len(group)
            yield group
    yield from pending.values()
