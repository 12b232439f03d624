"""Prometheus text exposition (runtime/metrics.py)."""

from __future__ import annotations

from runtime.metrics import Registry, parse_text


def test_counter_gauge_histogram_render_and_parse_back():
    reg = Registry()
    c = reg.counter("x_total", "doc")
    g = reg.gauge("trtllm_num_requests_running", "Number of active requests")
    h = reg.histogram("t_seconds", "doc", (0.1, 1.0), (("model_name", 'a"b'),))
    c.inc(2, (("pool", "workers"),))
    g.set(3, (("engine_type", "trtllm"), ("model_name", "m")))
    for v in (0.05, 0.5, 5.0):
        h.observe(v)
    text = reg.render()
    assert "# TYPE trtllm_num_requests_running gauge" in text
    assert 't_seconds_bucket{model_name="a\\"b",le="0.1"} 1' in text
    values = parse_text(text)
    assert values['x_total{pool="workers"}'] == 2
    assert values['trtllm_num_requests_running{engine_type="trtllm",model_name="m"}'] == 3
    assert values['t_seconds_bucket{model_name="a\\"b",le="1"}'] == 2
    assert values['t_seconds_bucket{model_name="a\\"b",le="+Inf"}'] == 3
    assert values['t_seconds_sum{model_name="a\\"b"}'] == 5.55
