"""Reading Prometheus text exposition in tests, one sample at a time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Samples", "parse", "sample", "scrape"]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """``{(sample name, {label: value}): value}`` of an exposition."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(registry: CollectorRegistry) -> Samples:
    """The samples a scrape of ``registry`` would read."""
    return parse(generate_latest(registry).decode())


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value, or ``None`` when the series is absent."""
    return samples.get((name, frozenset(labels.items())))
