"""The stand-in's KV cache with block reuse: what makes routing effects measurable on a CPU.

A worker's reusable blocks form a radix tree keyed by the v1 block hash (:mod:`runtime.kv_routing`).
A prompt reuses its longest cached prefix and prefills the rest; the new full blocks are stored;
when the cache is over capacity the least recently used *leaf* blocks are evicted (TensorRT-LLM's KV
cache manager only frees blocks no other cached block extends). Every change is queued as an event
in upstream's serialized form (``tensorrt_llm/_utils.py`` ``KVCacheEventSerializer``: ``created``,
``stored`` with ``parent_hash`` and ``blocks``, ``removed`` with ``block_hashes``), bounded like
``kv_cache_config.event_buffer_max_size`` (oldest dropped), and handed out once by :meth:`drain`
(the worker's ``POST /kv_cache_events`` pops what it returns).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .kv_routing import TOKENS_PER_BLOCK, block_hashes

DEFAULT_PRIORITY = 35
"""``KvCacheRetentionConfig`` default priority upstream reports for stored blocks."""


@dataclass
class _Node:
    parent: int
    children: set[int] = field(default_factory=set)


class BlockCache:
    """Reusable KV blocks of one worker, with LRU eviction of leaves and upstream-shaped events."""

    def __init__(self, capacity_blocks: int, tokens_per_block: int = TOKENS_PER_BLOCK,
                 event_buffer_max_size: int = 0, window_size: int = 0) -> None:
        if capacity_blocks < 1:
            raise ValueError(f"capacity_blocks {capacity_blocks}: must be >= 1")
        self.capacity = capacity_blocks
        self.tokens_per_block = tokens_per_block
        self.window_size = window_size
        self._nodes: dict[int, _Node] = {}
        self._lru: OrderedDict[int, None] = OrderedDict()  # leaves and inner blocks, oldest first
        self._events: deque[dict[str, Any]] | None = deque(maxlen=event_buffer_max_size) if event_buffer_max_size else None
        self._event_ids = itertools.count()
        self.evicted_blocks = 0
        self._emit({"type": "created", "num_blocks_per_cache_level": [capacity_blocks, 0]})

    def __len__(self) -> int:
        return len(self._nodes)

    # --- events ----------------------------------------------------------------------------
    def _emit(self, data: dict[str, Any]) -> None:
        if self._events is not None:
            self._events.append({"event_id": next(self._event_ids), "data": data, "window_size": self.window_size})

    def drain(self) -> list[dict[str, Any]]:
        """The queued events, oldest first; the queue is empty afterwards."""
        if self._events is None:
            return []
        out = list(self._events)
        self._events.clear()
        return out

    # --- reuse -----------------------------------------------------------------------------
    def lookup(self, token_ids: Sequence[int]) -> int:
        """Prompt tokens already cached (a multiple of tokens_per_block); marks them recently used."""
        matched = 0
        for h in block_hashes(token_ids, self.tokens_per_block):
            if h not in self._nodes:
                break
            self._lru.move_to_end(h)
            matched += self.tokens_per_block
        return matched

    def store(self, token_ids: Sequence[int]) -> int:
        """Cache every full block of the prompt (after its prefill); returns blocks newly stored."""
        parent = 0
        new: list[dict[str, Any]] = []
        first_parent = 0
        tpb = self.tokens_per_block
        for i, h in enumerate(block_hashes(token_ids, tpb)):
            chunk = token_ids[i * tpb:(i + 1) * tpb]
            if h in self._nodes:
                self._lru.move_to_end(h)
            else:
                if not new:
                    first_parent = parent
                self._nodes[h] = _Node(parent)
                if parent:
                    self._nodes[parent].children.add(h)
                self._lru[h] = None
                new.append({"type": "stored_block", "block_hash": h,
                            "tokens": [{"type": "unique_token", "token_id": t, "token_extra_id": 0} for t in chunk],
                            "cache_level": 0, "priority": DEFAULT_PRIORITY})
            parent = h
        if new:
            self._emit({"type": "stored", "parent_hash": first_parent or None, "blocks": new})
        self._evict()
        return len(new)

    def _evict(self) -> None:
        removed: list[int] = []
        while len(self._nodes) > self.capacity:
            victim = next((h for h in self._lru if not self._nodes[h].children), None)
            if victim is None:  # cannot happen in a tree, but never loop forever
                break
            node = self._nodes.pop(victim)
            del self._lru[victim]
            if node.parent in self._nodes:
                self._nodes[node.parent].children.discard(victim)
            removed.append(victim)
        if removed:
            self.evicted_blocks += len(removed)
            self._emit({"type": "removed", "block_hashes": removed})
