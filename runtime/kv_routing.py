"""KV-cache-aware routing: where a prompt's prefix is cached, weighed against load.

Block keys are TensorRT-LLM's v1 ``BlockKeyHasher`` (``cpp/tensorrt_llm/batch_manager/blockKey.cpp``;
the same function re-stated in Python by upstream's ``tensorrt_llm/runtime/kv_cache_hash.py``
@d1d016a1b1f7 ``hash_v1_block_key``, used by its ``KvCacheAwareRouter``): a block of
``tokens_per_block`` token ids (the prompt's last token is never part of a key: the KV cache manager
keeps it for generation) chained to its parent's hash. The workers publish the hashes they store and
evict on ``POST /kv_cache_events`` (``kv_cache_config.event_buffer_max_size`` > 0; format of
``tensorrt_llm/_utils.py`` ``KVCacheEventSerializer``: ``{"event_id", "data": {"type": "created" |
"stored" | "removed" | "updated", ...}, "window_size"}``), which :class:`KvIndex` applies.

The one non-obvious decision: the choice is a **cost in tokens**, as NVIDIA Dynamo's KV router
(``docs/architecture/kv_cache_routing.md``: overlap weight × blocks to prefill + active blocks),
not upstream's ``matched/padded − requests/max_batch_size``. Upstream's score lets a worker that holds
a popular prefix take requests until it has ``max_batch_size`` of them, which is what makes
prefix-affine routing pile up; a cost in tokens compares a prefix's saving with the queue it would
join in one unit. Where events are not available (``--kv-events off``, or an image whose capability
row lacks ``/kv_cache_events``), the index is *approximate*: it records the blocks of each request it
routed and forgets them after ``approx_ttl_s`` (Dynamo's ``ApproxKvIndexer``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

TOKENS_PER_BLOCK = 32
"""``kv_cache_config.tokens_per_block`` default of the PyTorch backend (llm_args.py)."""

_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1


def _token_term(tok: int) -> int:
    """The seed-independent part of blockKey.cpp's per-token step (a 32-bit mix plus the constant)."""
    v = tok & _U32
    v = (((v >> 16) ^ v) * 0x45D9F3B) & _U32
    v = (((v >> 16) ^ v) * 0x45D9F3B) & _U32
    v = ((v >> 16) ^ v) & _U32
    return (v + 0x9E3779B9) & _U32  # uint32 arithmetic in C++ before the size_t terms join


_TERMS: dict[int, int] = {}
"""token id -> :func:`_token_term` (a vocabulary's worth at most: ids repeat across prompts)."""


def block_key_hash(tokens: Sequence[int], parent_hash: int = 0) -> int:
    """The v1 block key of ``tokens`` under a parent block (0 for the first block)."""
    seed = (len(tokens) ^ ((parent_hash * 0xBF58476D1CE4E5B9) & _U64)) & _U64
    terms = _TERMS
    for tok in tokens:
        term = terms.get(tok)
        if term is None:
            if len(terms) >= 1 << 20:
                terms.clear()
            term = terms[tok] = _token_term(tok)
        seed ^= (term + ((seed << 6) & _U64) + (seed >> 2)) & _U64
    return seed


class _KeyMemo:
    """Block keys already computed, by (parent, tokens): shared prefixes (system prompts, history)
    are hashed once per process instead of once per request. Bounded; cleared when full."""

    def __init__(self, size: int = 1 << 16) -> None:
        self.size = size
        self._keys: dict[tuple[int, tuple[int, ...]], int] = {}

    def __call__(self, chunk: Sequence[int], parent: int) -> int:
        key = (parent, tuple(chunk))
        got = self._keys.get(key)
        if got is None:
            if len(self._keys) >= self.size:
                self._keys.clear()
            got = self._keys[key] = block_key_hash(chunk, parent)
        return got


_memo = _KeyMemo()


def block_hashes(token_ids: Sequence[int], tokens_per_block: int = TOKENS_PER_BLOCK) -> list[int]:
    """The chained block keys of a prompt, as the KV cache manager stores them (full blocks only:
    a partly filled last block is not reusable without partial reuse, so it is never matched)."""
    usable = len(token_ids) - 1  # the last prompt token is not part of any block key
    out: list[int] = []
    parent = 0
    for start in range(0, usable - tokens_per_block + 1, tokens_per_block):
        parent = _memo(token_ids[start:start + tokens_per_block], parent)
        out.append(parent)
    return out


@dataclass
class _Blocks:
    exact: set[int] = field(default_factory=set)
    approx: dict[int, float] = field(default_factory=dict)
    """block hash -> expiry (monotonic seconds), approximate mode only."""
    last_event_id: int = -1


class KvIndex:
    """Which blocks each endpoint holds: from its KV-cache events, or approximated from routing."""

    def __init__(self, tokens_per_block: int = TOKENS_PER_BLOCK, approx_ttl_s: float = 120.0) -> None:
        self.tokens_per_block = tokens_per_block
        self.approx_ttl_s = approx_ttl_s
        self._eps: dict[str, _Blocks] = {}

    def endpoints(self) -> list[str]:
        return list(self._eps)

    def forget(self, keep: Iterable[str]) -> None:
        """Drop endpoints that discovery no longer lists."""
        keep = set(keep)
        for url in [u for u in self._eps if u not in keep]:
            del self._eps[url]

    def apply_events(self, endpoint: str, events: Iterable[dict[str, Any]]) -> int:
        """Apply one poll's events (upstream's serialized form); returns how many were applied."""
        blocks = self._eps.setdefault(endpoint, _Blocks())
        n = 0
        for raw in events:
            event = raw.get("data", raw)
            event_id = raw.get("event_id")
            kind = event.get("type")
            if kind == "created":  # a (re)started cache: everything the index knew is gone
                blocks.exact.clear()
            elif kind == "stored":
                blocks.exact.update(b["block_hash"] for b in event.get("blocks", ()))
            elif kind == "removed":
                blocks.exact.difference_update(event.get("block_hashes", ()))
            else:
                continue
            if isinstance(event_id, int):
                blocks.last_event_id = event_id
            n += 1
        return n

    def record_routed(self, endpoint: str, hashes: Sequence[int], now: float | None = None,
                      ttl_s: float | None = None) -> None:
        """The endpoint will hold these blocks for ``ttl_s`` (default ``approx_ttl_s``): the whole
        index in approximate mode; in exact mode, the blocks of a prompt in flight until its events arrive."""
        expiry = (time.monotonic() if now is None else now) + (self.approx_ttl_s if ttl_s is None else ttl_s)
        approx = self._eps.setdefault(endpoint, _Blocks()).approx
        for h in hashes:
            approx[h] = expiry

    def matched_blocks(self, endpoint: str, hashes: Sequence[int], now: float | None = None) -> int:
        """Leading blocks of ``hashes`` the endpoint holds (a prefix match: the chain breaks at a miss)."""
        blocks = self._eps.get(endpoint)
        if blocks is None:
            return 0
        t = time.monotonic() if now is None else now
        n = 0
        for h in hashes:
            if h in blocks.exact:
                n += 1
                continue
            expiry = blocks.approx.get(h)
            if expiry is not None and expiry > t:
                n += 1
                continue
            break
        return n


@dataclass(frozen=True)
class KvWeights:
    """Weights of the routing cost, all in tokens (``routing:`` in the stack config)."""

    overlap: float = 2.0
    """Weight of the prompt tokens an endpoint would have to prefill (0: ignore the cache). 2, not 1:
    a prefill not done also keeps the cache from filling with a second copy of the prefix, which a
    queue position does not; ``benchmarks/prefix_routing.py`` measured 1 → 1.29× the oracle's
    prefill and 1.6× TTFT p50, 2 → 1.00× and 2.8× (4 workers, 32 shared system prompts)."""
    load: float = 1.0
    """Weight of the tokens already queued or running on an endpoint."""
    decode_token_cost: float = 1.0
    """Tokens of load one outstanding request adds besides its prefill (its decode share)."""


def routing_cost(prompt_tokens: int, matched_tokens: int, active_prefill_tokens: int, active_requests: int,
                 weights: KvWeights) -> float:
    """Cost of sending a prompt to one endpoint: the prefill it would do plus the work queued there."""
    uncached = max(prompt_tokens - matched_tokens, 0)
    return weights.overlap * uncached + weights.load * (active_prefill_tokens
                                                       + weights.decode_token_cost * active_requests)


def uncached_tokens(prompt_tokens: int, matched_blocks: int, tokens_per_block: int) -> int:
    return max(prompt_tokens - matched_blocks * tokens_per_block, 0)


@dataclass
class Choice:
    """One routing decision, kept until the request ends (so its load can be taken back)."""

    endpoint: str
    hashes: list[int]
    prompt_tokens: int
    matched_tokens: int

    @property
    def uncached_tokens(self) -> int:
        return max(self.prompt_tokens - self.matched_tokens, 0)


class KvAwareChooser:
    """Picks the endpoint of least :func:`routing_cost` and keeps each endpoint's queued prefill.

    ``approximate``: no KV-cache events from this pool (disabled, not supported by the image, or a
    generation pool: upstream's generation path publishes none), so every routed prompt's blocks are
    recorded as held for ``approx_ttl_s``.
    """

    def __init__(self, index: KvIndex, weights: KvWeights, approximate: bool, pending_ttl_s: float = 2.0) -> None:
        self.index = index
        self.weights = weights
        self.approximate = approximate
        self.pending_ttl_s = pending_ttl_s
        """Exact mode: how long a routed prompt's blocks count as held before its ``stored`` events
        arrive (requests with the same prefix sent meanwhile follow it instead of prefilling it again)."""
        self.active_prefill: dict[str, int] = {}
        self.active_requests: dict[str, int] = {}

    def hashes(self, token_ids: Sequence[int]) -> list[int]:
        return block_hashes(token_ids, self.index.tokens_per_block)

    def matched_tokens(self, endpoint: str, hashes: Sequence[int]) -> int:
        return self.index.matched_blocks(endpoint, hashes) * self.index.tokens_per_block

    def rank(self, candidates: Sequence[str], token_ids: Sequence[int],
             hashes: Sequence[int] | None = None) -> list[tuple[float, str, int]]:
        """``(cost, endpoint, matched tokens)`` for each candidate, cheapest first (stable on ties)."""
        hs = self.hashes(token_ids) if hashes is None else hashes
        out = []
        for url in candidates:
            matched = min(self.matched_tokens(url, hs), len(token_ids))
            cost = routing_cost(len(token_ids), matched, self.active_prefill.get(url, 0),
                                self.active_requests.get(url, 0), self.weights)
            out.append((cost, url, matched))
        out.sort(key=lambda c: c[0])
        return out

    def begin(self, endpoint: str, token_ids: Sequence[int], hashes: Sequence[int], matched: int) -> Choice:
        choice = Choice(endpoint, list(hashes), len(token_ids), matched)
        self.active_prefill[endpoint] = self.active_prefill.get(endpoint, 0) + choice.uncached_tokens
        self.active_requests[endpoint] = self.active_requests.get(endpoint, 0) + 1
        self.index.record_routed(endpoint, hashes, ttl_s=None if self.approximate else self.pending_ttl_s)
        return choice

    def first_byte(self, choice: Choice) -> None:
        """The endpoint finished this prompt's prefill: its queued prefill no longer counts."""
        if choice.uncached_tokens:
            self.active_prefill[choice.endpoint] = max(
                self.active_prefill.get(choice.endpoint, 0) - choice.uncached_tokens, 0)
            choice.matched_tokens = choice.prompt_tokens

    def end(self, choice: Choice) -> None:
        self.first_byte(choice)
        self.active_requests[choice.endpoint] = max(self.active_requests.get(choice.endpoint, 0) - 1, 0)


def request_token_ids(body: Any, chat: bool) -> list[int] | None:
    """The prompt's token ids as the frontend sends them (chat: ``prompt_token_ids``; completions: a
    ``prompt`` of ids, or one list of ids), or None when the request carries text only."""
    if not isinstance(body, dict):
        return None
    ids = body.get("prompt_token_ids") if chat else body.get("prompt")
    if isinstance(ids, list) and len(ids) == 1 and isinstance(ids[0], list):
        ids = ids[0]
    if isinstance(ids, list) and ids and all(type(i) is int for i in ids):
        return ids
    return None


@dataclass(frozen=True)
class KvRoutingConfig:
    """The router's KV-aware settings (``--routing kv-aware`` and its flags)."""

    weights: KvWeights = KvWeights()
    events: bool = True
    """Poll the workers' ``/kv_cache_events`` (else: approximate from routing decisions)."""
    tokens_per_block: int = TOKENS_PER_BLOCK
    poll_seconds: float = 0.5
    approx_ttl_s: float = 120.0
    max_local_prefill_tokens: int | None = None
    """Conditional disaggregation: a prompt whose uncached part on the chosen generation server is at
    most this many tokens is prefilled there (upstream's
    ``conditional_disagg_config.max_local_prefill_length``); None: always disaggregate."""

    def chooser(self, pool: str) -> KvAwareChooser:
        # upstream's generation path publishes no KV-cache events: its index is always approximate
        approximate = not self.events or pool == "generation"
        return KvAwareChooser(KvIndex(self.tokens_per_block, self.approx_ttl_s), self.weights, approximate,
                              pending_ttl_s=max(2.0, 10 * self.poll_seconds))


class KvAwarePolicy:
    """The router's :class:`runtime.policy.Policy` for ``--routing kv-aware``: least :func:`routing_cost`
    per pool, with each pool's :class:`KvAwareChooser`; requests without token ids fall back to least
    outstanding requests (ties: the first listed)."""

    def __init__(self, config: KvRoutingConfig) -> None:
        self.config = config
        self.choosers: dict[str, KvAwareChooser] = {}
        self.routed_tokens: dict[str, int] = {}
        self.matched_tokens: dict[str, int] = {}
        self._pending: Choice | None = None

    def chooser(self, pool: str) -> KvAwareChooser:
        got = self.choosers.get(pool)
        if got is None:
            got = self.choosers[pool] = self.config.chooser(pool)
        return got

    def rank(self, pool: str, candidates: Sequence[Any], ids: Sequence[int]) -> list[tuple[float, str, int]]:
        return self.chooser(pool).rank([e.url for e in candidates], ids)

    def choose(self, pool: str, candidates: list[Any], request: Any) -> Any:
        self._pending = None
        ids = request.prompt_ids
        if ids is None:
            return min(candidates, key=lambda e: e.inflight)
        chooser = self.chooser(pool)
        hashes = chooser.hashes(ids)
        by_url = {e.url: e for e in candidates}
        if request.prompt_tokens == 0:
            # a generation phase: the prompt's KV comes from the context server, so only load counts
            # (the blocks are still recorded: they are held here afterwards, for conditional prefill)
            url = min(by_url, key=lambda u: routing_cost(0, 0, chooser.active_prefill.get(u, 0),
                                                         chooser.active_requests.get(u, 0), chooser.weights))
            matched = len(ids)
        else:
            _, url, matched = chooser.rank(list(by_url), ids, hashes)[0]
        self.routed_tokens[pool] = self.routed_tokens.get(pool, 0) + len(ids)
        self.matched_tokens[pool] = self.matched_tokens.get(pool, 0) + matched
        self._pending = chooser.begin(url, ids, hashes, matched)
        return by_url[url]

    def routed(self, pool: str) -> Choice | None:
        """The choice :meth:`choose` just made (taken once): the router ends it with the request."""
        choice, self._pending = self._pending, None
        return choice

    def first_byte(self, pool: str, choice: Choice) -> None:
        self.chooser(pool).first_byte(choice)

    def end(self, pool: str, choice: Choice) -> None:
        self.chooser(pool).end(choice)
