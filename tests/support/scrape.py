"""A `/metrics` answer read back with `prometheus_client`'s own text parser, as Prometheus
would read it: `Scrape(text)` holds each family's type and help, and each sample by its
name (`..._total`, `..._bucket`) and labels."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Scrape:
    text: str
    types: dict[str, str] = field(default_factory=dict)
    """Each family's type, by its name (a counter's without `_total`)."""
    helps: dict[str, str] = field(default_factory=dict)
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for family in text_string_to_metric_families(self.text):
            assert family.name not in self.types, f"family {family.name} twice"
            self.types[family.name] = family.type
            self.helps[family.name] = family.documentation
            for sample in family.samples:
                series = self.samples.setdefault(sample.name, {})
                key = tuple(sorted(sample.labels.items()))
                assert key not in series, f"series twice: {sample.name}{sample.labels}"
                series[key] = sample.value

    def value(self, metric: str, /, **labels: str) -> float:
        return self.samples[metric][tuple(sorted(labels.items()))]

    def has(self, metric: str, /, **labels: str) -> bool:
        return tuple(sorted(labels.items())) in self.samples.get(metric, {})

    def series(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Every sample of `name` (none: empty)."""
        return self.samples.get(name, {})

    def where(self, metric: str, /, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
        """The samples of `metric` whose labels include `labels`."""
        wanted = set(labels.items())
        return {
            frozenset(key): value
            for key, value in self.series(metric).items()
            if wanted <= set(key)
        }
