"""The slice report of a real run: its numbers match the evaluation, and it renders
offline in a real headless Chromium without errors."""

from __future__ import annotations

import math
import os
import re

import pytest

from tests.headless_chromium import run_offline
from tests.taxi_sample import PROJECT_DIR

pytestmark = pytest.mark.e2e
SCREENSHOTS = PROJECT_DIR / "build" / "test-artifacts"


@pytest.fixture(scope="module")
def run_report(first_run):
    _, _, _, stdout, result = first_run
    assert result.report_dir, stdout
    html_path = os.path.join(result.report_dir, "report.html")
    assert f"report: {html_path}" in stdout  # the run's summary points at it
    return result, html_path, os.path.join(result.report_dir, "report.md")


def _slices_below(evaluation_uri: str, metric: str, bound: float) -> set[str]:
    """Independently of the report: slices whose metric is below the bound, per TFMA."""
    import tensorflow_model_analysis as tfma

    out = set()
    result = tfma.load_eval_result(evaluation_uri, model_name="candidate")
    if not result.slicing_metrics:  # a first run has no baseline, so one unnamed model
        result = tfma.load_eval_result(evaluation_uri)
    assert result.slicing_metrics
    for key, metrics in result.slicing_metrics:
        values = next(iter(next(iter(metrics.values())).values()))
        mean_label = values.get("mean_label", {}).get("doubleValue")
        value = values.get(metric, {}).get("doubleValue")
        one_class = mean_label in (0.0, 1.0)  # AUC is undefined there; accuracy is not
        if key and value is not None and not (one_class and metric == "auc") and value < bound:
            out.add(", ".join(f"{c}={v.decode() if isinstance(v, bytes) else v}" for c, v in key))
    return out


def test_markdown_matches_the_evaluation(run_report):
    result, _, md_path = run_report
    md = open(md_path).read()
    assert ("Model blessed" in md) == bool(result.blessed)
    auc = result.overall["auc"]
    assert re.search(rf"\| auc \| {auc:.4f} \|", md), md
    assert f"| example_count | {result.overall['example_count']:.0f} |" in md


def test_html_highlights_exactly_the_slices_below_threshold(run_report):
    from reporting.model import load_report

    result, html_path, _ = run_report
    html = open(html_path).read()
    report = load_report(result.evaluation_uri)
    min_auc = next(g.min_value for g in report.gates if g.metric == "auc" and g.min_value is not None)
    expected = _slices_below(result.evaluation_uri, "auc", min_auc)
    min_acc = next(g.min_value for g in report.gates if g.metric == "binary_accuracy" and g.min_value is not None)
    expected |= _slices_below(result.evaluation_uri, "binary_accuracy", min_acc)
    flagged = set(re.findall(r'<tr class="flag-bad[^"]*"><td data-v="([^"]*)"', html))
    import html as html_lib

    assert {html_lib.unescape(f) for f in flagged} == expected
    assert math.isclose(report.overall.values["auc"], result.overall["auc"])
    # Offline: nothing is loaded from anywhere.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)


def test_html_renders_in_headless_chromium_offline(run_report, tmp_path):
    _, html_path, _ = run_report
    url = f"file://{html_path}"
    dom = run_offline("--virtual-time-budget=2000", "--dump-dom", url, tmp_path=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="verdict"' in dom.stdout and 'id="headline"' in dom.stdout
    assert len(re.findall(r'<table class="sortable slices"', dom.stdout)) == 4  # one per slicing spec
    assert dom.stdout.count("<svg") >= 4
    console_errors = [l for l in dom.stderr.splitlines() if "CONSOLE" in l and ("Error" in l or "Uncaught" in l)]
    assert not console_errors, console_errors

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "report.png"
    if shot.exists():
        shot.unlink()
    res = run_offline(f"--screenshot={shot}", "--window-size=1200,1800", url, tmp_path=tmp_path)
    assert res.returncode == 0 and shot.exists() and shot.stat().st_size > 10_000, res.stderr[-2000:]
