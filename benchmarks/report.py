"""The benchmark's table, ratios and targets: pure functions over the results, so they can
be unit-tested without running anything, and the JSON can be re-rendered later
(`python -m benchmarks --report build/bench/results.json`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

SYSTEMS = ("ours-cold", "ours-rerun", "ours-third", "ours-edit", "tfx-example", "plain-tf")
LABELS = {
    "ours-cold": "our DAG, cold",
    "ours-rerun": "our DAG, rerun (nothing changed)",
    "ours-third": "our DAG, third run (all cached)",
    "ours-edit": "our DAG, rerun after an edit to the model code",
    "tfx-example": "TFX taxi example, cold",
    "plain-tf": "plain TensorFlow",
}


@dataclass
class RunResult:
    system: str
    rows: int
    wall_s: float
    peak_pss_mb: float
    peak_rss_mb: float
    auc: float | None = None
    components: dict[str, float] = field(default_factory=dict)  # seconds; cached ones too
    cached: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    ok: bool = True

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.wall_s if self.wall_s else 0.0


def to_json(results: list[RunResult], meta: dict) -> str:
    return json.dumps({"meta": meta, "results": [asdict(r) for r in results]}, indent=1)


def from_json(text: str) -> tuple[list[RunResult], dict]:
    data = json.loads(text)
    return [RunResult(**r) for r in data["results"]], data.get("meta", {})


def by_size(results: list[RunResult]) -> dict[int, dict[str, RunResult]]:
    out: dict[int, dict[str, RunResult]] = {}
    for r in results:
        out.setdefault(r.rows, {})[r.system] = r
    return dict(sorted(out.items()))


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


@dataclass
class Target:
    rows: int
    name: str
    value: float | None
    limit: float
    higher_is_better: bool = False

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    def describe(self) -> str:
        if self.value is None:
            return f"{self.name}: not measured"
        op = ">=" if self.higher_is_better else "<="
        verdict = "met" if self.met else "MISSED"
        return f"{self.name}: {self.value:.3f} (target {op} {self.limit:g}) {verdict}"


SMALL, LARGE = 15002, 1_500_000


def targets(results: list[RunResult]) -> list[Target]:
    """The issue's targets, for the sizes that were run. Cold-run ratios are against the TFX
    example; AUC is compared with the plain baseline's on the same size."""
    out = []
    sizes = by_size(results)
    for rows, runs in sizes.items():
        cold, rerun, third, edit, tfx, plain = (runs.get(s) for s in SYSTEMS)
        if cold and tfx:
            limit = 0.5 if rows <= SMALL else 0.35
            out.append(Target(rows, "wall ours/TFX example", ratio(cold.wall_s, tfx.wall_s), limit))
        if rows >= LARGE and cold and plain:
            out.append(Target(rows, "wall ours/plain TF", ratio(cold.wall_s, plain.wall_s), 5.0))
        if rows >= LARGE and cold and tfx:
            out.append(Target(rows, "peak memory ours/TFX example", ratio(cold.peak_pss_mb, tfx.peak_pss_mb), 0.5))
        if rerun:
            out.append(Target(rows, "rerun wall seconds", rerun.wall_s, 10.0))
        if third:
            out.append(Target(rows, "third run (all cached) wall seconds", third.wall_s, 10.0))
        if edit and rows <= SMALL:
            out.append(Target(rows, "rerun after a model-code edit, wall seconds", edit.wall_s, 15.0))
        if cold and plain and cold.auc is not None and plain.auc is not None:
            out.append(Target(rows, "AUC ours - plain TF", cold.auc - plain.auc, -0.01, higher_is_better=True))
    growth = memory_growth(results).get("ours-cold")
    if growth:
        rows, kb_per_row = growth[-1]
        out.append(Target(rows, "peak memory growth, KB per row (ours)", kb_per_row, 0.1))
    return out


def memory_growth(results: list[RunResult]) -> dict[str, list[tuple[int, float]]]:
    """{contender: [(rows, KB of peak PSS per added row from the next smaller size)]}: the
    marginal cost of a row, which decides how many rows fit in a machine's memory (the
    fixed cost of the imports and the model cancels out)."""
    out: dict[str, list[tuple[int, float]]] = {}
    for system in ("ours-cold", "tfx-example", "plain-tf"):
        runs = sorted((r for r in results if r.system == system and r.ok), key=lambda r: r.rows)
        for a, b in zip(runs, runs[1:]):
            out.setdefault(system, []).append((b.rows, (b.peak_pss_mb - a.peak_pss_mb) / (b.rows - a.rows) * 1024))
    return out


def _fmt(v, spec: str = ".1f") -> str:
    return "–" if v is None else format(v, spec)


def _top_components(r: RunResult, n: int = 4) -> str:
    ranked = sorted(r.components.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{k} {v:.0f}" for k, v in ranked if v >= 0.5) or "all cached"


def table(results: list[RunResult]) -> str:
    """A Markdown table: one row per size and system, then ratios and targets per size."""
    lines = [
        "| rows | run | wall s | rows/s | peak PSS MB | peak RSS MB | AUC | largest parts (s) |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for rows, runs in by_size(results).items():
        for system in SYSTEMS:
            r = runs.get(system)
            if r is None:
                continue
            status = "" if r.ok else " FAILED"
            lines.append(
                f"| {rows:,} | {LABELS[system]}{status} | {r.wall_s:.1f} | {r.rows_per_s:,.0f} | "
                f"{r.peak_pss_mb:,.0f} | {r.peak_rss_mb:,.0f} | {_fmt(r.auc, '.4f')} | {_top_components(r)} |"
            )
    return "\n".join(lines)


def ratios_text(results: list[RunResult]) -> str:
    lines = []
    for rows, runs in by_size(results).items():
        cold, rerun, third, edit, tfx, plain = (runs.get(s) for s in SYSTEMS)
        if not cold:
            continue
        parts = []
        if tfx:
            parts.append(
                f"ours/TFX wall {_fmt(ratio(cold.wall_s, tfx.wall_s), '.2f')}x, "
                f"memory {_fmt(ratio(cold.peak_pss_mb, tfx.peak_pss_mb), '.2f')}x"
            )
        if plain:
            parts.append(
                f"ours/plain wall {_fmt(ratio(cold.wall_s, plain.wall_s), '.2f')}x, "
                f"memory {_fmt(ratio(cold.peak_pss_mb, plain.peak_pss_mb), '.2f')}x"
            )
        if rerun:
            parts.append(f"rerun {rerun.wall_s:.1f} s")
        if third:
            parts.append(f"third run {third.wall_s:.1f} s")
        if edit:
            parts.append(f"rerun after a model-code edit {edit.wall_s:.1f} s")
        lines.append(f"- {rows:,} rows: " + "; ".join(parts))
    growth = memory_growth(results)
    if growth:
        lines.append("")
        lines.append("Peak memory growth (PSS, KB per added row, from the next smaller size):")
        for system, steps in growth.items():
            lines.append(f"- {LABELS[system]}: " + ", ".join(f"{kb:+.2f} up to {rows:,}" for rows, kb in steps))
    lines.append("")
    lines.append("Targets:")
    for t in targets(results):
        lines.append(f"- {t.rows:,} rows, {t.describe()}")
    return "\n".join(lines)


def plot(results: list[RunResult], path: str) -> None:
    """Wall seconds and peak memory per size and system, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = by_size(results)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(SYSTEMS)
    for i, system in enumerate(SYSTEMS):
        xs, walls, mems = [], [], []
        for j, runs in enumerate(sizes.values()):
            if system in runs:
                xs.append(j + i * width)
                walls.append(runs[system].wall_s)
                mems.append(runs[system].peak_pss_mb / 1024)
        axes[0].bar(xs, walls, width, label=LABELS[system])
        axes[1].bar(xs, mems, width, label=LABELS[system])
    for ax, title in zip(axes, ("wall seconds (lower is better)", "peak PSS of the process tree, GB")):
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(sizes))])
        ax.set_xticklabels([f"{rows:,} rows" for rows in sizes])
        ax.set_title(title)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
