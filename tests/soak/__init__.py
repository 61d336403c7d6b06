"""The fault soak at 200 orders (`bench/soak.py`, `bench/soak_cancel.py`), and what every run must show."""

from __future__ import annotations

from typing import Any

from bench.soak import SOAK_FAULT_KINDS, SoakConfig, SoakReport

#: Both runs' settings: 200 orders (``make soak`` runs 2,000), 5 retries (see ``test_soak.py``'s docstring).
CONFIG = SoakConfig(orders=200, max_retries=5)


def passed_under_every_fault(report: SoakReport) -> dict[str, Any]:
    """The counts of a run that passed, every fault kind injected, one outcome per order (of every kind)."""
    print(report.format())
    assert report.problems == [], report.format()
    counts = report.counts
    assert set(counts["faults_by_kind"]) == set(SOAK_FAULT_KINDS)  # every kind was injected
    assert {"updated", "unchanged", "ineligible"} <= set(counts["outcomes"])
    assert sum(counts["outcomes"].values()) == report.config.orders
    return counts
