"""What the throttling benches show the same way: a run's figures as Markdown cells and lines, and plots.

``bench/throttling.py``, ``bench/throttling_grid.py`` and ``bench/shared_pace.py`` measure operator runs
against a throttled account (:class:`~bench.throttling.ThrottleRun`, :class:`~bench.throttling.MultiTaskRun`);
each has its own table and plot, built from these pieces so that one figure reads the same in all of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.throttling import MultiTaskRun, ThrottleRun


class Answered429:
    """The share of requests answered 429, for a run that counts its ``requests`` and its ``throttled``."""

    requests: int
    throttled: int

    @property
    def throttled_share(self) -> float:
        """The share of the run's requests answered 429 (0.0 when it sent none)."""
        return self.throttled / self.requests if self.requests else 0.0


def run_cells(run: ThrottleRun) -> str:
    """One task's useful throughput, 429 share and failed orders, as Markdown cells (``0.85 | 1.1% | 0``)."""
    return f"{run.useful_throughput:.2f} | {100 * run.throttled_share:.1f}% | {run.failed}"


def multi_cells(run: MultiTaskRun) -> str:
    """Several tasks' aggregate useful throughput, 429 share, slowest/fastest and failed orders, as cells."""
    ratio = f"{run.share_ratio:.2f}"
    return f"{run.useful_throughput:.2f} | {100 * run.throttled_share:.1f}% | {ratio} | {run.failed}"


def multi_line(run: MultiTaskRun) -> str:
    """The same figures as a progress line (``useful 0.83, throttled 0.2%, share ratio 0.99, failed 0``)."""
    return (
        f"useful {run.useful_throughput:.2f}, throttled {100 * run.throttled_share:.1f}%, share ratio "
        f"{run.share_ratio:.2f}, failed {run.failed}"
    )


def multi_figures(run: MultiTaskRun) -> dict[str, float]:
    """The aggregate figures of :func:`multi_cells` as JSON-ready data (the keys of ``bench/results``)."""
    return {
        "useful_throughput": run.useful_throughput,
        "throttled_share": run.throttled_share,
        "share_ratio": run.share_ratio,
    }


@contextmanager
def figure(path: str, *grid: int, **options: Any) -> Iterator[tuple[Any, Any]]:
    """``(figure, axes)`` of a new Matplotlib figure (``plt.subplots(*grid, **options)``), saved as PNG.

    Matplotlib draws off screen (Agg: no display on a bench machine); on leaving the block the figure is
    laid out, written to ``path`` at 100 dpi and closed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made, axes = plt.subplots(*grid, **options)
    try:
        yield made, axes
        made.tight_layout()
        made.savefig(path, dpi=100)
    finally:
        plt.close(made)


def plot_useful_and_throttled(
    path: str,
    series: Sequence[tuple[str, str, Sequence[float], Sequence[ThrottleRun | MultiTaskRun]]],
    *,
    x_label: str,
    useful_title: str,
    log2_x: bool = False,
    x_ticks: Sequence[float] | None = None,
    targets: tuple[float, float] | None = None,
) -> None:
    """Useful throughput (left) and the share of requests answered 429 (right) against x, as a PNG.

    :param series: ``(label, style, xs, runs)`` per line, one run per x.
    :param targets: ``(useful, 429 percent)`` drawn as dotted lines, or ``None``.
    """
    with figure(path, 1, 2, figsize=(10, 4)) as (_, (left, right)):
        for label, style, xs, runs in series:
            left.plot(xs, [run.useful_throughput for run in runs], style, marker="o", label=label)
            right.plot(xs, [100 * run.throttled_share for run in runs], style, marker="o", label=label)
        if targets is not None:
            left.axhline(targets[0], color="grey", linewidth=0.8, linestyle=":")
            right.axhline(targets[1], color="grey", linewidth=0.8, linestyle=":")
        for axis, title in ((left, useful_title), (right, "requests answered 429 (%)")):
            if log2_x:
                axis.set_xscale("log", base=2)
            axis.set_xlabel(x_label)
            if x_ticks is not None:
                axis.set_xticks(x_ticks)
            axis.set_title(title)
            axis.grid(True, alpha=0.3)
        left.set_ylim(0, 1.05)
        left.legend(fontsize=8)
