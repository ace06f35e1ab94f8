"""report.html (self-contained, offline) and report.md (a pull-request comment)."""

from __future__ import annotations

import html
import math
import os
import tempfile

from reporting import charts
from reporting.model import FAIRNESS, Report, SliceRow, lower_is_better

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#111827;margin:0;background:#f9fafb}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.verdict{padding:14px 18px;border-radius:8px;margin:16px 0;font-size:16px}
.ok{background:#ecfdf5;border:1px solid #10b981}.bad{background:#fef2f2;border:1px solid #ef4444}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;min-width:130px}
.card b{display:block;font-size:20px}.up{color:#047857}.down{color:#b91c1c}.muted{color:#6b7280}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left;white-space:normal}
th{background:#f3f4f6;cursor:pointer;user-select:none;position:sticky;top:0}
th.sorted-asc::after{content:' \\25B2'}th.sorted-desc::after{content:' \\25BC'}
tr.flag-bad td{background:#fef2f2}tr.flag-small td{color:#6b7280;font-style:italic}
.tag{display:inline-block;font-size:11px;border-radius:4px;padding:0 5px;margin-left:4px;background:#e5e7eb}
.tag.bad{background:#fecaca;border:0}.charts{display:flex;flex-wrap:wrap;gap:12px}.charts svg{max-width:100%;height:auto;background:#fff}
ul.gates li{list-style:none}ul.gates li::before{content:attr(data-mark);margin-right:6px}
details{margin:8px 0}.scroll{max-height:520px;overflow:auto;border:1px solid #e5e7eb}
"""

SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
    var asc=!th.classList.contains('sorted-asc');
    t.querySelectorAll('th').forEach(function(h){h.classList.remove('sorted-asc','sorted-desc')});
    th.classList.add(asc?'sorted-asc':'sorted-desc');
    var rows=Array.prototype.slice.call(t.tBodies[0].rows);
    rows.sort(function(a,b){var x=a.cells[i].dataset.v,y=b.cells[i].dataset.v;
      var nx=parseFloat(x),ny=parseFloat(y);
      var c=(isNaN(nx)||isNaN(ny))?String(x).localeCompare(String(y)):nx-ny;return asc?c:-c;});
    rows.forEach(function(r){t.tBodies[0].appendChild(r)});});});});
"""


def _fmt(name: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.0f}" if name == "example_count" else f"{value:.4f}"


def _delta(value: float | None, base: float | None) -> str:
    if value is None or base is None or math.isnan(value) or math.isnan(base):
        return ""
    return f"{value - base:+.4f}"


def _delta_class(name: str, delta: str) -> str:
    """'up' (better) or 'down' (worse): a rise is worse for an error or a loss."""
    worse = not delta.startswith("-") if lower_is_better(name) else delta.startswith("-")
    return "down" if worse and delta.strip("+-0.") else "up"


def _table_columns(report: Report) -> list[str]:
    cols = list(report.view.table)
    for key in FAIRNESS:
        cols += [f"{key}@{t:g}" for t in report.fairness_thresholds]
    return cols


def _column_title(col: str) -> str:
    base, _, t = col.partition("@")
    return f"{FAIRNESS[base]}@{t}" if base in FAIRNESS else col


def _row_html(row: SliceRow, cols: list[str], show_delta: bool, deltas=("auc", "binary_accuracy")) -> str:
    classes = []
    if row.bad:
        classes.append("flag-bad")
    if "small" in row.flags:
        classes.append("flag-small")
    tags = "".join(
        f'<span class="tag{" bad" if f != "small" else ""}">{html.escape(f if f != "small" else "uncertain: few examples")}</span>'
        for f in row.flags
    )
    cells = [f'<td data-v="{html.escape(row.name)}">{html.escape(row.name)}{tags}</td>']
    for c in cols:
        v = row.values.get(c)
        shown = _fmt(c, v)
        if show_delta and c in deltas and row.baseline.get(c) is not None:
            d = _delta(v, row.baseline.get(c))
            if d:
                shown += f' <span class="{_delta_class(c, d)}">({d})</span>'
        sort_v = "" if v is None or math.isnan(v) else f"{v:.6f}"
        cells.append(f'<td data-v="{sort_v}">{shown}</td>')
    return f'<tr class="{" ".join(classes)}">' + "".join(cells) + "</tr>"


def _bound(report: Report, metric: str) -> float | None:
    """The threshold drawn on a slice chart: the metric's min (or max) gate."""
    for g in report.gates:
        if g.metric == metric:
            if g.min_value is not None:
                return g.min_value
            if g.max_value is not None:
                return g.max_value
    return None


def _task_charts(report: Report) -> list[str]:
    if report.task == "multiclass":
        return [charts.confusion_matrix([c.name for c in report.classes], report.confusion)]
    if report.task == "regression":
        return [charts.residuals(report.residuals, report.baseline_residuals or None)]
    base = report.baseline_curves
    return [
        charts.calibration(report.curves, base),
        charts.curve(report.curves.roc, base.roc if base else None, "roc"),
        charts.curve(report.curves.pr, base.pr if base else None, "pr"),
    ]


def _classes_html(report: Report) -> str:
    if not report.classes:
        return ""
    rows = []
    for c in report.classes:
        cells = [
            f'<td data-v="{html.escape(c.name)}">{html.escape(c.name)}</td>',
            f'<td data-v="{c.support:.0f}">{c.support:.0f}</td>',
        ]
        for name, value, base in (
            ("precision", c.precision, c.baseline_precision),
            ("recall", c.recall, c.baseline_recall),
        ):
            shown, d = _fmt(name, value), _delta(value, base)
            if d:
                shown += f' <span class="{_delta_class(name, d)}">({d})</span>'
            cells.append(f'<td data-v="{"" if math.isnan(value) else f"{value:.6f}"}">{shown}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    unknown = (
        (
            f"<p class='muted'>{report.unknown_class_examples:.0f} eval examples have a label of no known "
            "class: each counts as a miss for accuracy.</p>"
        )
        if report.unknown_class_examples
        else ""
    )
    return (
        "<h2>Per class (overall)</h2><div class='scroll'><table id='classes' class='sortable'>"
        "<thead><tr><th>class</th><th>examples</th><th>precision</th><th>recall</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>{unknown}"
        "<p class='muted'>Precision: of the examples predicted as the class (highest probability), the share "
        "that are; recall: of the examples of the class, the share predicted as it.</p>"
    )


FOOTNOTES = {
    "binary": "FPR/FNR/PPR/FDR: false positive, false negative, predicted positive and false discovery rate at "
    "the given decision threshold (fairness indicators).",
    "multiclass": "accuracy: share of examples whose most probable class is the label; log_loss: mean -log of the "
    "probability given to the true class.",
    "regression": "r2: 1 - SSE/SST within the slice (its own label variance, so a slice with little spread can "
    "score low with small errors); errors are in the label's units. Residual = label - prediction.",
}


def render_html(report: Report) -> str:
    cols = _table_columns(report)
    view = report.view
    verdict_cls = "ok" if report.blessed else "bad"
    verdict = (
        "BLESSED: the candidate passed every threshold and will be pushed."
        if report.blessed
        else "NOT BLESSED: the candidate failed a threshold and is not pushed."
    )
    parts = [
        f"<h1>Model evaluation: slice report</h1><div class='muted'>{html.escape(report.task)} model · "
        f"{html.escape(report.source)}</div>",
        f"<div id='verdict' class='verdict {verdict_cls}'><b>{verdict}</b></div>",
    ]

    gate_items = "".join(
        f'<li data-mark="{"✔" if ok else "✘"}" class="{"up" if ok else "down"}">{html.escape(text)}</li>'
        for text, ok in report.gate_results()
    )
    parts.append(f"<h2>Thresholds</h2><ul id='gates' class='gates'>{gate_items}</ul>")
    if report.failures:
        parts.append("<p class='down'>" + "<br>".join(html.escape(f) for f in report.failures) + "</p>")

    cards = []
    for name in view.headline:
        v = report.overall.values.get(name)
        b = report.overall.baseline.get(name)
        d = _delta(v, b)
        delta = (
            f"<span class='{_delta_class(name, d)}'>{d} vs baseline</span>"
            if d
            else "<span class='muted'>no baseline</span>"
        )
        cards.append(f"<div class='card'><span class='muted'>{name}</span><b>{_fmt(name, v)}</b>{delta}</div>")
    parts.append("<h2>Headline metrics (overall)</h2><div id='headline' class='cards'>" + "".join(cards) + "</div>")
    parts.append("<div class='charts' id='task-charts'>" + "".join(c for c in _task_charts(report) if c) + "</div>")
    parts.append(_classes_html(report))

    bound = _bound(report, view.rank)
    header = "".join(f"<th>{html.escape(_column_title(c))}</th>" for c in ["slice"] + cols)
    for spec, rows in report.specs.items():
        n_bad = sum(1 for r in rows if r.bad)
        body = "".join(_row_html(r, cols, report.has_baseline, view.deltas) for r in rows)
        parts.append(
            f"<h2>By {html.escape(spec)} <span class='muted'>({len(rows)} slices, {n_bad} flagged)</span></h2>"
            f"<div class='charts'>{charts.slice_bars(rows, view.rank, bound)}</div>"
            f"<div class='scroll'><table class='sortable slices' data-spec='{html.escape(spec)}'>"
            f"<thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div>"
        )
    parts.append(
        f"<p class='muted'>Slices with fewer than {report.small_slice_examples} examples are shown in "
        f"italics and marked uncertain. {FOOTNOTES[report.task]}</p>"
    )

    parts.append(_edge_html(report.edge))

    if report.statistics or report.anomalies:
        stats = "".join(
            f"<li>{html.escape(split)}: {s['examples']} examples; most often missing: "
            + html.escape(
                ", ".join(f"{k} {v:.0%}" for k, v in sorted(s["missing"].items(), key=lambda kv: -kv[1])[:4] if v > 0)
                or "none"
            )
            + "</li>"
            for split, s in report.statistics.items()
        )
        anomalies = (
            "".join(
                f"<li>{html.escape(split)}: {html.escape(a)}</li>"
                for split, items in report.anomalies.items()
                for a in items
            )
            or "<li>none</li>"
        )
        parts.append(
            f"<h2>Data</h2><ul id='statistics'>{stats}</ul><h3>Anomalies</h3><ul id='anomalies'>{anomalies}</ul>"
        )
    if report.continuous:
        parts.append(
            "<h2>Continuous training</h2><ul id='continuous'>"
            + "".join(f"<li>{html.escape(line)}</li>" for line in continuous_lines(report))
            + "</ul>"
        )

    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>Slice report: {'blessed' if report.blessed else 'not blessed'}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(parts)}</main><script>{SORT_JS}</script></body></html>"
    )


def _edge_rows(edge: dict) -> list[list[str]]:
    """[model, each metric with its change, max |diff|, size, latency, verdict] per model."""
    base = edge["savedmodel"]
    names = list(base["metrics"])
    rows = [
        ["SavedModel"]
        + [f"{base['metrics'][m]:.4f}" for m in names]
        + ["–", f"{base['bytes'] / 1e6:.2f} MB", f"{base['latency_ms']:.3f}", "TF Serving"]
    ]
    for variant in ("float", "int8"):
        v = edge.get(variant)
        if v:
            rows.append(
                [f"LiteRT {variant}"]
                + [f"{v['metrics'][m]:.4f} ({v['metrics'][m] - base['metrics'][m]:+.4f})" for m in names]
                + [
                    f"{v['max_abs_diff']:.2e}",
                    f"{v['bytes'] / 1e3:.1f} kB",
                    f"{v['latency_ms']:.3f}",
                    "published" if v["published"] else "not published: " + "; ".join(v["failures"]),
                ]
            )
    return [["model"] + names + ["max abs diff", "size", "ms/example", "verdict"]] + rows


def _edge_html(edge: dict) -> str:
    if not edge:
        return ""
    head, *rows = _edge_rows(edge)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    floats = ", ".join(edge.get("int8", {}).get("float_ops", [])) or "none"
    return (
        "<h2>Edge models (LiteRT) beside the SavedModel</h2><div class='scroll'><table id='edge'><thead><tr>"
        + "".join(f"<th>{html.escape(c)}</th>" for c in head)
        + f"</tr></thead><tbody>{body}</tbody></table></div>"
        f"<p class='muted'>On the {edge['eval_examples']} eval examples; max |diff|: the largest difference of one "
        f"example's output from the SavedModel's; int8 operations that stay float: {html.escape(floats)}.</p>"
    )


def _markdown_edge(edge: dict) -> list[str]:
    if not edge:
        return []
    head, *rows = _edge_rows(edge)
    return [
        "",
        "**Edge models (LiteRT) beside the SavedModel:**",
        "",
        "| " + " | ".join(head) + " |",
        "|---|" + "---:|" * (len(head) - 2) + "---|",
    ] + ["| " + " | ".join(r) + " |" for r in rows]


def _markdown_worst(report: Report, worst: int) -> list[str]:
    rank = report.view.rank
    rows = report.worst_slices(rank, worst)
    if not rows:
        return []
    if report.task == "binary":
        title, shown = "AUC", ("auc", "binary_accuracy")
        head = "| slice | examples | AUC | accuracy | flags |"
    else:
        title, shown = rank, tuple(c for c in report.view.table if c != "example_count")
        head = "| slice | examples | " + " | ".join(shown) + " | flags |"
    lines = [
        "",
        f"**Worst slices by {title}** (at least {report.small_slice_examples} examples):",
        "",
        head,
        "|---|---:|" + "---:|" * len(shown) + "---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.count} | "
            + " | ".join(_fmt(c, r.values.get(c)) for c in shown)
            + f" | {', '.join(r.flags) or ''} |"
        )
    return lines


def _markdown_classes(report: Report, limit: int = 12) -> list[str]:
    if not report.classes:
        return []
    lines = ["", "| class | examples | precision | recall |", "|---|---:|---:|---:|"]
    for c in report.classes:
        lines.append(f"| {c.name} | {c.support:.0f} | {_fmt('precision', c.precision)} | {_fmt('recall', c.recall)} |")
    k = len(report.classes)
    if k <= limit and report.confusion:
        names = [c.name for c in report.classes]
        lines += [
            "",
            "Confusion matrix (rows: true class, columns: predicted):",
            "",
            "| true \\ predicted | " + " | ".join(names) + " |",
            "|---|" + "---:|" * k,
        ]
        for name, row in zip(names, report.confusion):
            lines.append(f"| {name} | " + " | ".join(f"{v:.0f}" for v in row) + " |")
    if report.unknown_class_examples:
        lines += [
            "",
            f"{report.unknown_class_examples:.0f} eval example(s) have a label of no known class "
            "(each counts as a miss for accuracy).",
        ]
    return lines


def continuous_lines(report: Report) -> list[str]:
    """Span, warm start and drift per feature, one line each."""
    c, lines = report.continuous, []
    if "span" in c:
        previous = c.get("previous_span", -1)
        lines.append(
            f"span {c['span']}"
            + (f", compared with span {previous}" if previous >= 0 else " (the first: no drift check)")
        )
    if "warm_start" in c:
        w = c["warm_start"]
        lines.append(f"{'warm start' if w['warm_started'] else 'cold start'}: {w['detail']} ({w['steps']} steps)")
    for r in c.get("drift", []):
        lines.append(
            f"drift {'DRIFTED' if r['drifted'] else 'ok'}: {r['feature']}: {r['measure']} "
            f"{r['value']:.4f} (threshold {r['threshold']:g})"
        )
    return lines


def render_markdown(report: Report, worst: int = 5) -> str:
    icon = "✅" if report.blessed else "❌"
    lines = [f"## {icon} Model {'blessed' if report.blessed else 'NOT blessed'}", ""]
    for text, ok in report.gate_results():
        lines.append(f"- {'✔' if ok else '✘'} {text}")
    lines += ["", "| metric | candidate | baseline | change |", "|---|---:|---:|---:|"]
    for name in report.view.headline:
        v, b = report.overall.values.get(name), report.overall.baseline.get(name)
        lines.append(
            f"| {name} | {_fmt(name, v)} | {_fmt(name, b) if b is not None else '–'} | {_delta(v, b) or '–'} |"
        )
    lines += _markdown_classes(report)
    lines += _markdown_worst(report, worst)
    if report.continuous:
        lines += ["", "### Continuous training", ""] + [f"- {line}" for line in continuous_lines(report)]
    lines += _markdown_edge(report.edge)
    flagged = sum(1 for rs in report.specs.values() for r in rs if r.bad)
    lines += [
        "",
        f"{flagged} slice(s) outside a threshold or regressed; full per-slice tables and plots in `report.html`.",
    ]
    return "\n".join(lines) + "\n"


def write_reports(report: Report, out_dir: str) -> tuple[str, str]:
    """Write report.html and report.md; each appears whole or not at all, and both are
    written before either replaces the old one (a full disk leaves the old pair)."""
    os.makedirs(out_dir, exist_ok=True)
    staged = []
    try:
        for name, text in (("report.html", render_html(report)), ("report.md", render_markdown(report))):
            fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.")
            staged.append((tmp, os.path.join(out_dir, name)))
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
        for tmp, target in staged:
            os.replace(tmp, target)
            os.chmod(target, 0o644)
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return staged[0][1], staged[1][1]
