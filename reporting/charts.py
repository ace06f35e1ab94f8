"""Static charts as inline SVG (matplotlib, no JavaScript, nothing fetched)."""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from reporting.model import Curves, ResidualBin, SliceRow  # noqa: E402

CANDIDATE, BASELINE, BAD = "#2563eb", "#9ca3af", "#dc2626"
plt.rcParams.update({"font.size": 9, "svg.fonttype": "none", "axes.spines.top": False, "axes.spines.right": False})


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(
        buf, format="svg", bbox_inches="tight", metadata={"Creator": None, "Date": None, "Format": None, "Type": None}
    )
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


UNIT_INTERVAL = ("auc", "binary_accuracy", "precision", "recall", "accuracy", "auc_precision_recall")


def slice_bars(rows: list[SliceRow], metric: str, min_value: float | None, limit: int = 25) -> str:
    """One bar per slice; `min_value` (despite its name, any bound of the metric) as a dashed line."""
    rows = [r for r in rows if not math.isnan(r.values.get(metric, math.nan))][:limit]
    if not rows:
        return ""
    fig, ax = plt.subplots(figsize=(6.5, 0.22 * len(rows) + 0.8))
    # Values only ("Credit Card / 5"): the spec is in the chart's heading.
    names = [" / ".join(part.split("=", 1)[-1] for part in r.name.split(", ")) for r in rows][::-1]
    values = [r.values[metric] for r in rows][::-1]
    colors = [BAD if r.bad else CANDIDATE for r in rows][::-1]
    alphas = [0.45 if "small" in r.flags else 1.0 for r in rows][::-1]
    bars = ax.barh(range(len(rows)), values, color=colors)
    for bar, alpha in zip(bars, alphas):
        bar.set_alpha(alpha)
    base = [r.baseline.get(metric) for r in rows][::-1]
    ys = [i for i, b in enumerate(base) if b is not None]
    if ys:
        ax.scatter([base[i] for i in ys], ys, marker="|", s=120, color="#111827", label="baseline", zorder=3)
        ax.legend(loc="lower right" if metric in UNIT_INTERVAL else "best", frameon=False)
    if min_value is not None:
        ax.axvline(min_value, color=BAD, linestyle="--", linewidth=1)
    ax.set_yticks(range(len(rows)), [n[:40] for n in names])
    if metric in UNIT_INTERVAL:
        ax.set_xlim(min(0.5, min(values) - 0.05) if metric == "auc" else 0, 1.0)
    else:  # errors, log loss, r2: from 0 (or the lowest value) to a little past the highest
        known = [v for v in values + [b for b in base if b is not None] + [min_value] if v is not None]
        low, high = min(0.0, min(known)), max(known)
        ax.set_xlim(low, high + 0.05 * (high - low or 1.0))
    ax.set_xlabel(metric)
    return _svg(fig)


def calibration(curves: Curves, baseline: Curves | None) -> str:
    if not curves.calibration:
        return ""
    fig, ax = plt.subplots(figsize=(3.4, 3.2))
    ax.plot([0, 1], [0, 1], color="#d1d5db", linewidth=1)
    if baseline and baseline.calibration:
        ax.plot(*zip(*[(p, l) for p, l, _ in baseline.calibration]), "o-", color=BASELINE, label="baseline", ms=3)
    ax.plot(*zip(*[(p, l) for p, l, _ in curves.calibration]), "o-", color=CANDIDATE, label="candidate", ms=3)
    ax.set(xlabel="mean prediction", ylabel="observed rate", title="Calibration", xlim=(0, 1), ylim=(0, 1))
    ax.legend(frameon=False)
    return _svg(fig)


def curve(points: list[tuple[float, float]], base: list[tuple[float, float]] | None, kind: str) -> str:
    if not points:
        return ""
    fig, ax = plt.subplots(figsize=(3.4, 3.2))
    if kind == "roc":
        ax.plot([0, 1], [0, 1], color="#d1d5db", linewidth=1)
    if base:
        ax.plot(*zip(*base), color=BASELINE, label="baseline")
    ax.plot(*zip(*points), color=CANDIDATE, label="candidate")
    labels = (
        ("false positive rate", "true positive rate", "ROC")
        if kind == "roc"
        else ("recall", "precision", "Precision-recall")
    )
    ax.set(xlabel=labels[0], ylabel=labels[1], title=labels[2], xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(frameon=False)
    return _svg(fig)


def confusion_matrix(names: list[str], matrix: list[list[float]], limit: int = 30) -> str:
    """Rows: the true class; columns: the predicted (most probable) class; cells: examples,
    shaded by the share of their row (so a rare class's errors show as clearly as a common one's)."""
    k = min(len(names), limit)
    if not k or not any(any(row) for row in matrix):
        return ""
    rows = [row[:k] for row in matrix[:k]]
    shares = [[v / (sum(row) or 1.0) for v in row] for row in rows]
    size = min(7.0, 1.2 + 0.45 * k)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    if k <= 15:
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                ax.text(
                    j,
                    i,
                    f"{v:.0f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if shares[i][j] > 0.6 else "#111827",
                )
    labels = [n[:14] for n in names[:k]]
    ax.set_xticks(range(k), labels, rotation=45, ha="right")
    ax.set_yticks(range(k), labels)
    ax.set(xlabel="predicted class", ylabel="true class", title="Confusion matrix (eval set)")
    for spine in ax.spines.values():
        spine.set_visible(False)
    return _svg(fig)


def residuals(bins: list[ResidualBin], baseline: list[ResidualBin] | None) -> str:
    """Mean residual (label - prediction) per prediction bin of about equal size: a curve
    away from zero is a bias over that range of predictions."""
    if not bins:
        return ""
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    ax.axhline(0.0, color="#d1d5db", linewidth=1)
    if baseline:
        ax.plot(
            [b.mean_prediction for b in baseline],
            [b.mean_residual for b in baseline],
            "o-",
            color=BASELINE,
            label="baseline",
            ms=3,
        )
    ax.plot(
        [b.mean_prediction for b in bins],
        [b.mean_residual for b in bins],
        "o-",
        color=CANDIDATE,
        label="candidate",
        ms=3,
    )
    ax.set(xlabel="mean prediction (bin)", ylabel="mean residual (label - prediction)", title="Residuals")
    ax.legend(frameon=False)
    return _svg(fig)
