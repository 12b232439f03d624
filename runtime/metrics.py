"""Prometheus text exposition (format 0.0.4) without ``prometheus_client``.

The runtime ships in a ConfigMap and may import only the standard library and aiohttp, so the
three metric kinds it needs are implemented here. Updates are plain attribute arithmetic on the
event loop thread (no locks): every process is single-threaded asyncio.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_labels(labels: Labels, extra: Labels = ()) -> str:
    items = labels + extra
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


def _num(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.doc = doc

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.doc}", f"# TYPE {self.name} {self.kind}"]

    def render(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    """A monotonically increasing value per label set."""

    kind = "counter"

    def __init__(self, name: str, doc: str) -> None:
        super().__init__(name, doc)
        self.values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, labels: Labels = ()) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def get(self, labels: Labels = ()) -> float:
        return self.values.get(labels, 0.0)

    def render(self) -> list[str]:
        lines = self.header()
        for labels, value in sorted(self.values.items()):
            lines.append(f"{self.name}{format_labels(labels)} {_num(value)}")
        return lines


class Gauge(Counter):
    """A value that goes up and down per label set (``set`` or ``inc``/``dec``)."""

    kind = "gauge"

    def set(self, value: float, labels: Labels = ()) -> None:
        self.values[labels] = float(value)

    def dec(self, amount: float = 1.0, labels: Labels = ()) -> None:
        self.inc(-amount, labels)

    def remove_except(self, keep: Iterable[Labels]) -> None:
        keep_set = set(keep)
        for labels in list(self.values):
            if labels not in keep_set:
                del self.values[labels]


class Histogram(_Metric):
    """Cumulative buckets, ``_sum`` and ``_count`` for one label set."""

    kind = "histogram"

    def __init__(self, name: str, doc: str, buckets: Sequence[float], labels: Labels = ()) -> None:
        super().__init__(name, doc)
        self.bounds = list(buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0
        self.labels = labels

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def render(self) -> list[str]:
        lines = self.header()
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            le = (("le", _num(bound)),)
            lines.append(f"{self.name}_bucket{format_labels(self.labels, le)} {running}")
        inf = (("le", "+Inf"),)
        lines.append(f"{self.name}_bucket{format_labels(self.labels, inf)} {self.count}")
        lines.append(f"{self.name}_sum{format_labels(self.labels)} {_num(self.sum)}")
        lines.append(f"{self.name}_count{format_labels(self.labels)} {self.count}")
        return lines


class Registry:
    """An ordered set of metrics rendered as one exposition document."""

    content_type = "text/plain; version=0.0.4; charset=utf-8"

    def __init__(self) -> None:
        self.metrics: list[_Metric] = []

    def add(self, metric: _Metric) -> _Metric:
        self.metrics.append(metric)
        return metric

    def counter(self, name: str, doc: str) -> Counter:
        c = Counter(name, doc)
        self.add(c)
        return c

    def gauge(self, name: str, doc: str) -> Gauge:
        g = Gauge(name, doc)
        self.add(g)
        return g

    def histogram(self, name: str, doc: str, buckets: Sequence[float], labels: Labels = ()) -> Histogram:
        h = Histogram(name, doc, buckets, labels)
        self.add(h)
        return h

    def render(self) -> str:
        lines: list[str] = []
        for metric in self.metrics:
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


def parse_text(text: str) -> dict[str, float]:
    """``{'name{labels}': value}`` from an exposition document (tests and benchmarks read metrics)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out
