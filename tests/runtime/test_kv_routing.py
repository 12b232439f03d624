"""KV-cache-aware routing: block keys as TensorRT-LLM computes them, the index, the cost, the cache model."""

from __future__ import annotations

import pytest

from runtime.kv_cache_model import BlockCache
from runtime.kv_routing import (
    KvAwareChooser,
    KvIndex,
    KvWeights,
    block_hashes,
    block_key_hash,
    request_token_ids,
    routing_cost,
)

# Reference values of upstream's v1 block key (tensorrt_llm/runtime/kv_cache_hash.py @d1d016a1b1f7
# hash_v1_block_key, the Python statement of cpp/tensorrt_llm/batch_manager/blockKey.cpp), computed
# with upstream's function: a router whose keys differ would never match a worker's events.
UPSTREAM_KEYS = [
    (([1, 2, 3, 4], 0), 924206229973855),
    (([128000, 9906, 11, 1917], 0), 511057048059633),
]


@pytest.mark.parametrize(("args", "want"), UPSTREAM_KEYS)
def test_block_keys_equal_upstreams(args, want):
    assert block_key_hash(*args) == want


def test_block_keys_chain_to_their_parent():
    first = block_key_hash([1, 2, 3, 4])
    assert block_key_hash([5, 6, 7, 8], first) == 2728178455351807326
    assert block_key_hash([5, 6, 7, 8], first) != block_key_hash([5, 6, 7, 8])


def test_the_last_prompt_token_is_never_part_of_a_block():
    assert len(block_hashes(list(range(8)), 4)) == 1  # 7 usable tokens: one full block
    assert len(block_hashes(list(range(9)), 4)) == 2
    assert block_hashes(list(range(9)), 4)[0] == block_hashes(list(range(5)), 4)[0]


def test_the_index_applies_stored_removed_and_created_events():
    idx = KvIndex(tokens_per_block=4)
    hs = block_hashes(list(range(13)), 4)  # 3 blocks
    stored = {"event_id": 1, "data": {"type": "stored", "parent_hash": None,
                                      "blocks": [{"type": "stored_block", "block_hash": h} for h in hs]},
              "window_size": 0}
    assert idx.apply_events("a", [stored]) == 1
    assert idx.matched_blocks("a", hs) == 3
    idx.apply_events("a", [{"event_id": 2, "data": {"type": "removed", "block_hashes": [hs[1]]}}])
    assert idx.matched_blocks("a", hs) == 1  # a prefix match: the chain breaks at the missing block
    idx.apply_events("a", [{"event_id": 3, "data": {"type": "created", "num_blocks_per_cache_level": [8, 0]}}])
    assert idx.matched_blocks("a", hs) == 0
    assert idx.matched_blocks("unknown", hs) == 0


def test_approximate_entries_expire():
    idx = KvIndex(tokens_per_block=4, approx_ttl_s=10)
    hs = block_hashes(list(range(9)), 4)
    idx.record_routed("a", hs, now=100.0)
    assert idx.matched_blocks("a", hs, now=109.0) == 2
    assert idx.matched_blocks("a", hs, now=110.5) == 0


def test_cost_weighs_the_prefill_saved_against_the_queue():
    w = KvWeights(overlap=1.0, load=1.0, decode_token_cost=0.0)
    cached_busy = routing_cost(2000, 1984, active_prefill_tokens=1500, active_requests=3, weights=w)
    cold_idle = routing_cost(2000, 0, active_prefill_tokens=0, active_requests=0, weights=w)
    assert cached_busy < cold_idle  # 1516 < 2000: the prefix is worth queueing behind 1.5k tokens
    cached_busier = routing_cost(2000, 1984, active_prefill_tokens=2500, active_requests=3, weights=w)
    assert cached_busier > cold_idle
    assert routing_cost(2000, 1984, 0, 4, KvWeights(overlap=0.0, load=1.0, decode_token_cost=1.0)) == 4


def test_chooser_follows_the_prefix_then_spills_when_loaded():
    chooser = KvAwareChooser(KvIndex(tokens_per_block=4), KvWeights(decode_token_cost=0.0), approximate=True)
    prompt = list(range(401))
    hs = chooser.hashes(prompt)
    first = chooser.begin("a", prompt, hs, 0)  # a cold prefill recorded on a
    chooser.end(first)
    _, best, matched = chooser.rank(["b", "a"], prompt)[0]
    assert (best, matched) == ("a", 400)
    other = list(range(1000, 1401))
    chooser.begin("a", other, chooser.hashes(other), 0)  # 400 uncached tokens queued on a
    chooser.begin("a", other, chooser.hashes(other), 0)  # 800: more than the 400 the prefix saves
    assert chooser.rank(["b", "a"], prompt)[0][1] == "b"


def test_request_token_ids_reads_what_the_frontend_sends():
    assert request_token_ids({"prompt_token_ids": [1, 2]}, chat=True) == [1, 2]
    assert request_token_ids({"prompt": [[3, 4]]}, chat=False) == [3, 4]
    assert request_token_ids({"prompt": "text"}, chat=False) is None
    assert request_token_ids({"prompt": [1, "x"]}, chat=False) is None
    assert request_token_ids([1, 2], chat=False) is None


def test_cache_reuses_a_prefix_and_evicts_least_recently_used_leaves():
    cache = BlockCache(capacity_blocks=4, tokens_per_block=4, event_buffer_max_size=16)
    a = list(range(9))  # 2 blocks
    b = list(range(100, 109))  # 2 blocks
    assert cache.lookup(a) == 0
    assert cache.store(a) == 2 and cache.store(b) == 2
    assert cache.lookup(a) == 8  # a is now the most recent
    c = list(range(200, 209))
    cache.store(c)  # over capacity by 2: b's leaf goes, then b's root (now a leaf)
    assert cache.lookup(b) == 0 and cache.lookup(a) == 8 and len(cache) == 4
    assert cache.evicted_blocks == 2


def test_cache_events_have_upstreams_shape_and_are_handed_out_once():
    cache = BlockCache(capacity_blocks=2, tokens_per_block=4, event_buffer_max_size=16)
    cache.store(list(range(9)))
    cache.store(list(range(50, 55)))
    events = cache.drain()
    assert [e["data"]["type"] for e in events] == ["created", "stored", "stored", "removed"]
    assert [e["event_id"] for e in events] == [0, 1, 2, 3]
    block = events[1]["data"]["blocks"][0]
    assert set(block) == {"type", "block_hash", "tokens", "cache_level", "priority"}
    assert block["tokens"][0] == {"type": "unique_token", "token_id": 0, "token_extra_id": 0}
    assert events[1]["data"]["parent_hash"] is None
    assert events[3]["data"]["block_hashes"] == [events[1]["data"]["blocks"][1]["block_hash"]]
    assert cache.drain() == []
    idx = KvIndex(tokens_per_block=4)
    idx.apply_events("w", events)
    assert idx.matched_blocks("w", block_hashes(list(range(9)), 4)) == 1


def test_cache_event_buffer_keeps_the_newest():
    cache = BlockCache(capacity_blocks=100, tokens_per_block=4, event_buffer_max_size=2)
    for k in range(5):
        cache.store(list(range(k * 10, k * 10 + 5)))
    assert [e["event_id"] for e in cache.drain()] == [4, 5]
