"""Three days of continuous training on small daily spans, run by `python -m pipeline.days`
as a user runs it: a clean first day (cold start, pushed), a clean second day (two-span
window, warm-started from the first day's model, pushed) and a drifted third day (stopped
by DriftCheck naming the features, nothing pushed). One session of runs; several checks."""

from __future__ import annotations

import glob
import re
import subprocess
import sys

import pytest

from conftest import PROJECT_DIR

pytestmark = pytest.mark.e2e

COLD_STEPS, WARM_STEPS = 150, 50
LINE = re.compile(r"^(\d{4}-\d\d-\d\d)  span (\d+)  rows +(\d+)  (.*)$", re.M)


@pytest.fixture(scope="module")
def three_days(tmp_path_factory):
    out = tmp_path_factory.mktemp("days")
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.days", "--days", "3", "--rows", "1000", "--out", str(out),
         "--set", f"train_steps={COLD_STEPS}", "--set", f"warm_start_steps={WARM_STEPS}", "--set", "eval_steps=10",
         "--set", "thresholds={auc = {min = 0.55}}", "--set", "max_drop={auc = 0.2}"],
        capture_output=True, text=True, cwd=PROJECT_DIR, timeout=1800)
    lines = {m.group(1): m for m in LINE.finditer(proc.stdout)}
    return out, proc, lines


def test_each_day_reads_the_newest_span_and_says_what_happened(three_days):
    out, proc, lines = three_days
    assert proc.returncode == 0, proc.stdout + proc.stderr  # only the drifted day stopped
    assert list(lines) == ["2026-11-01", "2026-11-02", "2026-11-03"], proc.stdout
    # TFX's date spans: days since 1970-01-01; each run picked the span written that day.
    assert [int(m.group(2)) for m in lines.values()] == [20758, 20759, 20760]
    assert all(m.group(3) == "1000" for m in lines.values())
    day1, day2, day3 = (m.group(4) for m in lines.values())
    assert "window 20758 " in day1 and f"cold start ({COLD_STEPS} steps)" in day1 and day1.endswith("-> pushed"), day1
    assert "no previous span" in day1
    assert "window 20758+20759 " in day2 and f"warm start ({WARM_STEPS} steps)" in day2, day2
    assert "no drift" in day2 and day2.endswith("-> pushed"), day2


def test_the_drifted_span_is_stopped_with_its_features_named(three_days):
    out, proc, lines = three_days
    day3 = lines["2026-11-03"].group(4)
    assert day3.startswith("DRIFT: span 20760 drifted from span 20759: "), day3
    assert "payment_type (L-infinity distance" in day3 and "trip_start_hour (Jensen-Shannon divergence" in day3
    assert day3.endswith("-> not pushed")
    # Clean features stay below their thresholds: the gate names only what moved.
    assert "company" not in day3 and "fare" not in day3
    assert len(glob.glob(str(out / "serving" / "taxi_tips" / "*"))) == 2  # days 1 and 2 only


def test_warm_start_reaches_the_cold_start_auc_in_fewer_steps(three_days):
    _, _, lines = three_days
    auc = {day: float(re.search(r"AUC (\d\.\d+)", m.group(4)).group(1))
           for day, m in lines.items() if "AUC" in m.group(4)}
    # Day 2: 50 warm steps from day 1's model against day 1's 150 cold steps.
    assert auc["2026-11-02"] >= auc["2026-11-01"] - 0.005, auc


def test_the_warm_start_names_its_model_and_the_report_shows_it(three_days):
    from pipeline.run_outputs import read_run_result

    out, _, _ = three_days
    result = read_run_result(str(out / "metadata.sqlite"), "taxi-tips")  # day 2: day 3 stopped before Trainer
    assert result.warm_start["warm_started"] is True
    source = result.warm_start["detail"].removeprefix("from ").split(";")[0]
    assert re.fullmatch(rf"{out}/root/Trainer/model/\d+/Format-Serving", source), result.warm_start
    assert glob.glob(f"{source}/assets.extra/warm_start/weights.h5")
    assert result.window == {"20758": 1000, "20759": 1000} and result.span == 20759
    assert {d["feature"] for d in result.drift} >= {"payment_type", "trip_start_hour", "company"}
    assert not any(d["drifted"] for d in result.drift)
    report = open(f"{result.report_dir}/report.md").read()
    assert f"warm start: from {source}" in report and "span 20759, compared with span 20758" in report
    assert re.search(r"drift ok: trip_start_hour: Jensen-Shannon divergence \d\.\d{4} \(threshold 0\.05\)", report)


def test_every_span_keeps_its_statistics(three_days):
    import tensorflow_data_validation as tfdv

    out, _, _ = three_days
    kept = sorted(glob.glob(str(out / "root" / "StatisticsGen" / "statistics" / "*" / "Split-span" / "FeatureStats.pb")))
    assert len(kept) == 3  # one per day, the drifted one included
    counts = [tfdv.load_stats_binary(p).datasets[0].num_examples for p in kept]
    assert counts == [1000, 1000, 1000]
