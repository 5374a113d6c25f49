"""Reading ``/metrics`` the way Prometheus does: prometheus-client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition, keyed by (sample name, its labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    """One sample's value; 0 when the series is absent (never observed yet)."""
    return scraped.get((name, frozenset(labels.items())), 0.0)


def series(scraped: dict[tuple[str, frozenset], float], name: str) -> dict[frozenset, float]:
    """Every label set of one sample name."""
    return {labels: v for (sample, labels), v in scraped.items() if sample == name}
