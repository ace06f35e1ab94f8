"""Evaluation, gates and the slice report for each task, on real TFMA and Beam.

Each task gets two tiny SavedModels with the pipeline's contract (serving_default takes
serialized tf.Examples without the label; transform_features returns the label as
`__label_xf`), evaluated the way TFX's Evaluator does it (candidate and baseline, change
thresholds, tfma.run_model_analysis over a TFRecord file). Their predictions are a formula
of one feature, so the expected metrics come from numpy on the same rows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from metrics import gates, results, slicing
from metrics import regression as regression_metrics
from modeling.roles import Plan
from pipeline import evaluation

N = 600
GROUPS = ("north", "south", "tiny")
CLASSES = ["red", "green", "blue"]
SLOPES = {  # task -> (candidate, baseline): the models' one parameter
    "binary": (2.0, 0.5),
    "multiclass": (2.0, 0.7),
    "regression": (1.5, 2.0),  # the truth is 2x + 1: the candidate is the worse model
}
# Gates per task (binary: none configured, so the task's defaults).
MULTICLASS_GATES = dict(
    thresholds={"accuracy": {"min": 0.4}, "log_loss": {"max": 0.5}}, max_drop={"accuracy": 0.0, "log_loss": 0.0}
)
REGRESSION_GATES = dict(
    thresholds={"r2": {"min": 0.5}, "mean_absolute_error": {"max": 2.0}},
    max_drop={"root_mean_squared_error": 0.05, "r2": 0.5},
)


def _data(task: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=N).astype(np.float32)
    group = rng.choice(GROUPS, size=N, p=[0.55, 0.43, 0.02])
    if task == "binary":
        y = (rng.random(N) < 1 / (1 + np.exp(-2 * x))).astype(np.int64)
    elif task == "multiclass":
        y = np.array([rng.choice(3, p=p) for p in _softmax(2.0 * _logit_basis(x))], dtype=np.int64)
        y[:6] = -1  # a class the vocabulary did not know
    else:
        y = (2 * x + 1 + rng.normal(size=N) * 0.5).astype(np.float32)
    return x, group, y


def _logit_basis(x):
    return np.stack([x, np.full_like(x, 0.5), -x], axis=1)  # class 1 wins near 0


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _predict(task: str, slope: float, x):
    """What the SavedModel computes, in numpy."""
    if task == "binary":
        return 1 / (1 + np.exp(-slope * x))
    if task == "multiclass":
        return _softmax(slope * _logit_basis(x))
    return slope * x + 1


def _write_examples(path, x, group, y) -> None:
    with tf.io.TFRecordWriter(str(path)) as w:
        for xi, gi, yi in zip(x, group, y):
            label = (
                tf.train.Feature(float_list=tf.train.FloatList(value=[yi]))
                if y.dtype == np.float32
                else tf.train.Feature(int64_list=tf.train.Int64List(value=[yi]))
            )
            w.write(
                tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            "x": tf.train.Feature(float_list=tf.train.FloatList(value=[xi])),
                            "g": tf.train.Feature(bytes_list=tf.train.BytesList(value=[gi.encode()])),
                            "y": label,
                        }
                    )
                ).SerializeToString()
            )


def _save_model(path, task: str, slope: float) -> None:
    label_type = tf.float32 if task == "regression" else tf.int64
    raw_spec = {
        "x": tf.io.FixedLenFeature([], tf.float32),
        "g": tf.io.FixedLenFeature([], tf.string),
        "y": tf.io.FixedLenFeature([], label_type),
    }
    serving_spec = {k: v for k, v in raw_spec.items() if k != "y"}
    module = tf.Module()
    module.slope = tf.Variable(slope)
    examples = tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")

    @tf.function(input_signature=[examples])
    def serve(serialized):
        x = tf.io.parse_example(serialized, serving_spec)["x"][:, None]
        if task == "binary":
            return {"probabilities": tf.sigmoid(module.slope * x)}
        if task == "multiclass":
            probabilities = tf.nn.softmax(module.slope * tf.concat([x, tf.fill(tf.shape(x), 0.5), -x], axis=1))
            classes = tf.tile(tf.constant([CLASSES]), [tf.shape(x)[0], 1])
            return {"probabilities": probabilities, "classes": classes}
        return {"predictions": module.slope * x + 1.0}

    @tf.function(input_signature=[examples])
    def transform(serialized):
        parsed = tf.io.parse_example(serialized, raw_spec)
        return {"__label_xf": parsed["y"], "x_xf": parsed["x"]}

    tf.saved_model.save(module, str(path), signatures={"serving_default": serve, "transform_features": transform})


def _plan(task: str) -> Plan:
    classes = {"binary": ["0", "1"], "multiclass": CLASSES, "regression": []}[task]
    return Plan(task=task, label="y", label_dtype="float" if task == "regression" else "int", classes=classes)


def _cfg(thresholds=None, max_drop=None):
    """The settings eval_config reads (the lead's PipelineConfig has these fields)."""
    return SimpleNamespace(
        slicing_features=["g"],
        slicing_crosses=[],
        fairness_thresholds=[0.25, 0.5, 0.75],
        thresholds=thresholds or {},
        max_drop=max_drop or {},
    )


@dataclass
class Run:
    task: str
    output: str
    x: np.ndarray
    group: np.ndarray
    y: np.ndarray


def _evaluate_all(tmp) -> dict[str, Run]:
    """Each task's candidate and baseline evaluated as TFX's Evaluator executor does it
    (tfx/components/evaluator/executor.py: defaults filled in for a baseline, one shared
    model each, TFExampleRecord -> ExtractEvaluateAndWriteResults), the three tasks in one
    Beam pipeline (one start-up instead of three)."""
    import apache_beam as beam
    import tensorflow_model_analysis as tfma
    from tfx_bsl.tfxio import tf_example_record

    gates_by_task = {"binary": {}, "multiclass": MULTICLASS_GATES, "regression": REGRESSION_GATES}
    runs = {}
    with beam.Pipeline() as pipeline:
        for task, task_gates in gates_by_task.items():
            folder = tmp / task
            folder.mkdir()
            x, group, y = _data(task)
            data = folder / "eval.tfrecord"
            _write_examples(data, x, group, y)
            for name, slope in zip(("candidate", "baseline"), SLOPES[task]):
                _save_model(folder / name, task, slope)
            config = tfma.utils.update_eval_config_with_defaults(
                evaluation.eval_config(_cfg(**task_gates), _plan(task)), has_baseline=True, rubber_stamp=True
            )
            models = [
                tfma.default_eval_shared_model(
                    eval_saved_model_path=str(folder / name), model_name=name, eval_config=config
                )
                for name in ("candidate", "baseline")
            ]
            runs[task] = Run(task, str(folder / "evaluation"), x, group, y)
            source = tf_example_record.TFExampleRecord(
                file_pattern=str(data), raw_record_column_name=tfma.ARROW_INPUT_COLUMN
            )
            examples = pipeline | f"Read[{task}]" >> source.BeamSource()
            _ = examples | f"Evaluate[{task}]" >> tfma.ExtractEvaluateAndWriteResults(
                eval_config=config, eval_shared_model=models, output_path=runs[task].output
            )
            if task == "binary":
                # The same evaluation through the DAG's custom extractors (module_path).
                runs["binary_ours"] = Run(task, str(folder / "evaluation_ours"), x, group, y)
                _ = examples | "Evaluate[binary_ours]" >> tfma.ExtractEvaluateAndWriteResults(
                    eval_config=config,
                    eval_shared_model=models,
                    output_path=runs["binary_ours"].output,
                    extractors=slicing.custom_extractors(models, config, None),
                )
    return runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return _evaluate_all(tmp_path_factory.mktemp("evaluations"))


@pytest.fixture(scope="module")
def multiclass_run(runs):
    return runs["multiclass"]


@pytest.fixture(scope="module")
def regression_run(runs):
    return runs["regression"]


@pytest.fixture(scope="module")
def binary_run(runs):
    return runs["binary"]


def _metrics(run: Run, model: str = "candidate") -> dict:
    """{slice: {(sub_key, name): value}} as TFMA wrote them."""
    import tensorflow_model_analysis as tfma

    out = {}
    for key, metrics in tfma.load_eval_result(run.output, model_name=model).slicing_metrics:
        out[tuple(key)] = {
            (sub, name): v.get("doubleValue") for sub, named in metrics[""].items() for name, v in named.items()
        }
    return out


def _rows(run: Run, slice_key: tuple):
    mask = np.ones(N, bool) if not slice_key else run.group == slice_key[0][1]
    return run.x[mask], run.y[mask]


# --- multiclass ---------------------------------------------------------------------------


def test_multiclass_metrics_match_scikit_learn_on_every_slice(multiclass_run):
    from sklearn.metrics import log_loss, precision_score, recall_score

    for model, slope in zip(("candidate", "baseline"), SLOPES["multiclass"]):
        got_by_slice = _metrics(multiclass_run, model)
        assert set(got_by_slice) == {(), *((("g", g),) for g in GROUPS)}
        for slice_key, got in got_by_slice.items():
            x, y = _rows(multiclass_run, slice_key)
            p = _softmax(slope * _logit_basis(x))
            predicted = p.argmax(axis=1)
            known = y >= 0
            assert got[("", "example_count")] == len(y)
            assert got[("", "accuracy")] == pytest.approx(np.mean(predicted == y), abs=1e-9)
            assert got[("", "log_loss")] == pytest.approx(log_loss(y[known], p[known], labels=[0, 1, 2]), rel=1e-5)
            precision = precision_score(y, predicted, labels=[0, 1, 2], average=None, zero_division=np.nan)
            recall = recall_score(y, predicted, labels=[0, 1, 2], average=None, zero_division=np.nan)
            for c in range(3):
                for name, expected in (("precision", precision[c]), ("recall", recall[c])):
                    value = got.get((f"classId:{c}", name))
                    assert (
                        (value is None or math.isnan(value))
                        if math.isnan(expected)
                        else value == pytest.approx(expected, abs=1e-9)
                    ), (slice_key, name, c)


def test_multiclass_gates(multiclass_run):
    import tensorflow_model_analysis as tfma

    validation = tfma.load_validation_result(multiclass_run.output)
    failed = {
        (f.metric_key.name, f.metric_key.is_diff) for s in validation.metric_validations_per_slice for f in s.failures
    }
    # accuracy >= 0.4 and no worse than the baseline: met; log_loss <= 0.5: not met; log
    # loss no higher than the baseline's: met (the candidate is the sharper, better model).
    assert failed == {("log_loss", False)}
    assert not validation.validation_ok
    assert {(s.slice_key.SerializeToString()) for s in validation.metric_validations_per_slice} == {b""}


# --- regression ---------------------------------------------------------------------------


def test_regression_metrics_match_numpy_on_every_slice(regression_run):
    for model, slope in zip(("candidate", "baseline"), SLOPES["regression"]):
        for slice_key, got in _metrics(regression_run, model).items():
            x, y = _rows(regression_run, slice_key)
            p = (np.float32(slope) * x + np.float32(1)).astype(np.float64)
            y = y.astype(np.float64)
            sse = np.sum((y - p) ** 2)
            assert got[("", "mean_absolute_error")] == pytest.approx(np.mean(np.abs(y - p)), rel=1e-6)
            assert got[("", "mean_squared_error")] == pytest.approx(sse / len(y), rel=1e-6)
            assert got[("", "root_mean_squared_error")] == pytest.approx(np.sqrt(sse / len(y)), rel=1e-6)
            assert got[("", "r2")] == pytest.approx(1 - sse / np.sum((y - y.mean()) ** 2), rel=1e-6)


def test_regression_gates_compare_with_the_baseline_in_the_metrics_direction(regression_run):
    import tensorflow_model_analysis as tfma

    validation = tfma.load_validation_result(regression_run.output)
    failed = {
        (f.metric_key.name, f.metric_key.is_diff) for s in validation.metric_validations_per_slice for f in s.failures
    }
    # The candidate (1.5x + 1) is worse than the baseline (2x + 1, the truth): its RMSE rose by
    # more than 0.05 (lower is better) -> fails; its r2 fell, by less than 0.5 -> passes; the
    # absolute bounds (r2 >= 0.5, MAE <= 2) pass.
    assert failed == {("root_mean_squared_error", True)}
    candidate, baseline = _metrics(regression_run)[()], _metrics(regression_run, "baseline")[()]
    rise = candidate[("", "root_mean_squared_error")] - baseline[("", "root_mean_squared_error")]
    assert rise > 0.05 and 0 < baseline[("", "r2")] - candidate[("", "r2")] < 0.5


def test_residual_plot_bins_hold_the_slice_residuals(regression_run):
    import tensorflow_model_analysis as tfma

    plots = dict((tuple(k), v) for k, v in tfma.load_eval_result(regression_run.output, model_name="candidate").plots)
    x, y = _rows(regression_run, ())
    p = (np.float32(SLOPES["regression"][0]) * x + np.float32(1)).astype(np.float64)  # edges are float64
    buckets = plots[()][""][""]["calibrationHistogramBuckets"]["buckets"]
    assert len(buckets) == regression_metrics.PLOT_BINS
    assert sum(b["numWeightedExamples"] for b in buckets) == N
    assert sum(b["totalWeightedLabel"] for b in buckets) == pytest.approx(y.sum(), rel=1e-5)
    for b in buckets:  # each bin: exactly the rows whose prediction falls in its range
        inside = (p >= b["lowerThresholdInclusive"]) & (p < b["upperThresholdExclusive"])
        assert inside.sum() == b["numWeightedExamples"]
        assert b["totalWeightedRefinedPrediction"] == pytest.approx(p[inside].sum(), rel=1e-5, abs=1e-4)
        assert (
            abs(b["numWeightedExamples"] - N / regression_metrics.PLOT_BINS) <= 0.5 * N / regression_metrics.PLOT_BINS
        )


def test_r2_summary_is_weighted_and_does_not_depend_on_how_rows_are_split():
    """The accumulator behind r2 and the plot, fed as Beam may feed it: in parts, merged in any order."""
    rng = np.random.default_rng(1)
    y = 1e6 + rng.normal(size=3000)  # far from zero: a sum of squares would lose the variance (1e-4 here)
    p = y + rng.normal(size=3000) * 0.3
    w = rng.uniform(0.1, 3.0, size=3000)

    def summary(y, p, order, parts):
        chunks = []
        for idx in np.array_split(order, parts):
            s = regression_metrics._Summary()
            for i in idx:
                s.add(float(y[i]), float(p[i]), float(w[i]))
            chunks.append(s)
        merged = chunks[0]
        for s in chunks[1:]:
            merged.merge(s)
        return merged

    mean = np.average(y, weights=w)
    expected = 1 - np.sum(w * (y - p) ** 2) / np.sum(w * (y - mean) ** 2)
    assert summary(y, p, np.arange(3000), 1).r2() == pytest.approx(expected, rel=1e-9)
    assert summary(y, p, rng.permutation(3000), 7).r2() == pytest.approx(expected, rel=1e-9)

    p[:4] = [1e9, -1e9, 0.0, 1e300]  # far outliers take a bucket each, not the resolution of the rest
    one, many = summary(y, p, np.arange(3000), 1), summary(y, p, rng.permutation(3000), 7)
    assert one.shift == many.shift and one.buckets.keys() == many.buckets.keys()
    bins, other_bins = one.plot().buckets, many.plot().buckets
    assert [(b.lower_threshold_inclusive, b.upper_threshold_exclusive) for b in bins] == [
        (b.lower_threshold_inclusive, b.upper_threshold_exclusive) for b in other_bins
    ]
    assert len(bins) >= regression_metrics.PLOT_BINS - 2  # the bulk is not lumped into one bin
    constant = regression_metrics._Summary()
    for _ in range(3):
        constant.add(5.0, 4.0, 1.0)
    assert math.isnan(constant.r2())  # SST = 0: R² is undefined, not -inf


# --- binary -------------------------------------------------------------------------------


def test_binary_keeps_its_metrics_and_default_gates(binary_run):
    from sklearn.metrics import roc_auc_score

    got = _metrics(binary_run)[()]
    x, y = _rows(binary_run, ())
    p = _predict("binary", SLOPES["binary"][0], x)
    assert got[("", "auc")] == pytest.approx(roc_auc_score(y, p), abs=2e-3)  # TFMA's AUC: 10,000 buckets
    assert got[("", "binary_accuracy")] == pytest.approx(np.mean((p >= 0.5) == y), abs=1e-9)
    for name in ("auc_precision_recall", "precision", "recall", "mean_label", "mean_prediction", "calibration"):
        assert ("", name) in got
    defaults = gates.gates_for("binary", {}, {})
    assert defaults == ({"example_count": {"min": 1}, "auc": {"min": 0.5}}, {"auc": 0.01})
    import tensorflow_model_analysis as tfma

    assert tfma.load_validation_result(binary_run.output).validation_ok


# --- configuration ------------------------------------------------------------------------


def _everything(output: str) -> tuple:
    """Every metric and plot (slice, key, value) and the validation result TFMA wrote."""
    import tensorflow_model_analysis as tfma

    metrics = sorted(
        (str(m.slice_key), str(kv.key), kv.value.SerializeToString(deterministic=True))
        for m in tfma.load_metrics(output)
        for kv in m.metric_keys_and_values
    )
    plots = sorted(
        (str(p.slice_key), str(kv.key), kv.value.SerializeToString(deterministic=True))
        for p in tfma.load_plots(output)
        for kv in p.plot_keys_and_values
    )
    return metrics, plots, tfma.load_validation_result(output).validation_ok


def test_the_dags_extractors_change_no_metric_plot_or_gate(runs):
    """metrics.slicing's extractors (features pruned to the slicing columns before
    TFMA unbatches them, cheaper slice keys) give TFMA's output bit for bit."""
    ours, tfmas = _everything(runs["binary_ours"].output), _everything(runs["binary"].output)
    assert len(ours[0]) > 100 and len(ours[1]) >= 2 * 3  # both models, 4 slices, 2 plots each
    assert {m[0] for m in ours[0]} == {m[0] for m in tfmas[0]}
    assert ours == tfmas


def test_every_gate_name_is_a_metric_the_task_computes():
    for task, names in gates.METRICS.items():
        thresholds = {name: {"min": -1e9} for name in names}
        config = evaluation.eval_config(_cfg(thresholds, {n: 0.1 for n in names}), _plan(task))
        gated = [m for m in config.metrics_specs[0].metrics if m.per_slice_thresholds]
        assert len(gated) == len(names), task
        for metric in gated:
            t = metric.per_slice_thresholds[0]
            assert list(t.slicing_specs) == [evaluation.tfma.SlicingSpec()]  # the overall slice only
            assert t.threshold.value_threshold.lower_bound.value == -1e9
        assert results.task_of(config) == task


def test_change_thresholds_follow_the_metric_direction():
    t = evaluation.metric_threshold("regression", "root_mean_squared_error", None, 0.2)
    assert t.change_threshold.direction == evaluation.tfma.MetricDirection.LOWER_IS_BETTER
    assert t.change_threshold.absolute.value == pytest.approx(0.2)
    t = evaluation.metric_threshold("regression", "r2", {"min": 0.1, "max": 0.9}, 0.2)
    assert t.change_threshold.direction == evaluation.tfma.MetricDirection.HIGHER_IS_BETTER
    assert t.change_threshold.absolute.value == pytest.approx(-0.2)
    assert (t.value_threshold.lower_bound.value, t.value_threshold.upper_bound.value) == (0.1, 0.9)


@pytest.mark.parametrize(
    "thresholds, max_drop, field_name",
    [
        ({"auc": {"min": 0.7}}, {}, "thresholds.auc"),  # binary gate on a regression model
        ({"r2": {"least": 0.7}}, {}, "thresholds.r2"),
        ({"r2": {"min": 0.9, "max": 0.1}}, {}, "thresholds.r2"),
        ({}, {"r2": -0.1}, "max_drop.r2"),
        ({}, {"accuracy": 0.1}, "max_drop.accuracy"),
    ],
)
def test_bad_gates_name_the_field(thresholds, max_drop, field_name):
    with pytest.raises(gates.GateError, match=re.escape(field_name)):
        evaluation.eval_config(_cfg(thresholds, max_drop), _plan("regression"))


def test_a_first_run_with_only_max_drop_gates_still_has_a_value_gate():
    """TFMA blesses nothing when no threshold applies; a first run has no baseline."""
    thresholds, _ = gates.gates_for("multiclass", {}, {"accuracy": 0.01})
    assert thresholds == {"example_count": {"min": 1}}


def test_describe_says_which_way_each_gate_goes():
    text = gates.describe(
        "regression", *gates.gates_for("regression", {"r2": {"min": 0.6}}, {"root_mean_squared_error": 0.1})
    )
    assert text == "example_count >= 1; r2 >= 0.6; root_mean_squared_error rise <= 0.1 vs the last blessed model"


# --- the slice report -----------------------------------------------------------------------


def _report(run: Run, tmp_path):
    from reporting.model import load_report
    from reporting.render import write_reports

    report = load_report(run.output, small_slice_examples=50)
    html_path, md_path = write_reports(report, tmp_path / "report")
    return report, open(html_path).read(), open(md_path).read(), html_path


def _flagged(html: str) -> set[str]:
    import html as html_lib

    return {html_lib.unescape(f) for f in re.findall(r'<tr class="flag-bad[^"]*"><td data-v="([^"]*)"', html)}


def test_multiclass_report(multiclass_run, tmp_path):
    report, html, md, _ = _report(multiclass_run, tmp_path)
    overall = _metrics(multiclass_run)[()]
    assert report.task == "multiclass" and not report.blessed
    assert "## ❌ Model NOT blessed" in md
    assert f"| accuracy | {overall[('', 'accuracy')]:.4f} |" in md
    assert ("log_loss <= 0.5000 (is %.4f)" % overall[("", "log_loss")], False) in report.gate_results()
    assert ("accuracy at most 0.0000 below baseline (change +0.0000)", True) in report.gate_results()
    # Per class and the confusion matrix, against the model's argmax on the same rows.
    x, y = _rows(multiclass_run, ())
    predicted = _softmax(SLOPES["multiclass"][0] * _logit_basis(x)).argmax(axis=1)
    expected = [[int(np.sum((y == a) & (predicted == p))) for p in range(3)] for a in range(3)]
    assert report.confusion == expected
    assert report.unknown_class_examples == np.sum(y < 0)
    assert [c.name for c in report.classes] == CLASSES
    for c, row in enumerate(report.classes):
        assert row.precision == pytest.approx(overall[(f"classId:{c}", "precision")])
        assert row.baseline_recall is not None
        assert f"| {CLASSES[c]} | {sum(expected[c])} | {row.precision:.4f} | {row.recall:.4f} |" in md
    assert "| red | " + " | ".join(str(v) for v in expected[0]) + " |" in md
    assert "id='classes'" in html and "Confusion matrix" in html
    # Slices flagged: those outside a gate's bound (log_loss above 0.5, accuracy below 0.4), per TFMA.
    by_slice = _metrics(multiclass_run)
    expected = {
        f"g={k[0][1]}" for k, m in by_slice.items() if k and (m[("", "log_loss")] > 0.5 or m[("", "accuracy")] < 0.4)
    }
    assert expected and _flagged(html) == expected
    assert all("above threshold" in r.flags for r in report.specs["g"] if r.name in expected)


def test_regression_report(regression_run, tmp_path):
    report, html, md, _ = _report(regression_run, tmp_path)
    candidate = _metrics(regression_run)
    baseline = _metrics(regression_run, "baseline")
    assert report.task == "regression" and not report.blessed
    results = dict(report.gate_results())
    rise = candidate[()][("", "root_mean_squared_error")] - baseline[()][("", "root_mean_squared_error")]
    assert results[f"root_mean_squared_error at most 0.0500 above baseline (change {rise:+.4f})"] is False
    assert results["r2 >= 0.5000 (is %.4f)" % candidate[()][("", "r2")]] is True
    assert "root_mean_squared_error change vs baseline = +" in " ".join(report.failures)
    assert "needs change <= +0.0500 [Overall]" in " ".join(report.failures)
    # Slices flagged in the HTML: exactly those whose RMSE rose by more than 0.05 (per TFMA).
    expected = {
        f"g={k[0][1]}"
        for k in candidate
        if k and candidate[k][("", "root_mean_squared_error")] - baseline[k][("", "root_mean_squared_error")] > 0.05
    }
    assert expected and _flagged(html) == expected
    # The residual plot: per bin, mean label - mean prediction of the rows in it.
    x, y = _rows(regression_run, ())
    p = (np.float32(SLOPES["regression"][0]) * x + np.float32(1)).astype(np.float64)
    assert len(report.residuals) == regression_metrics.PLOT_BINS and len(report.baseline_residuals) > 0
    for b in report.residuals:
        inside = (p >= b.low) & (p < b.high)
        assert b.mean_residual == pytest.approx(np.mean(y[inside] - p[inside]), rel=1e-4, abs=1e-5)
    assert "Residuals" in html and "**Worst slices by root_mean_squared_error**" in md
    worst = report.worst_slices()
    assert [r.values["root_mean_squared_error"] for r in worst] == sorted(
        (r.values["root_mean_squared_error"] for r in worst), reverse=True
    )  # worst = highest error


def test_binary_report(binary_run, tmp_path):
    report, html, md, _ = _report(binary_run, tmp_path)
    auc = _metrics(binary_run)[()][("", "auc")]
    assert report.task == "binary" and report.blessed and "## ✅ Model blessed" in md
    assert re.search(rf"\| auc \| {auc:.4f} \|", md) and "**Worst slices by AUC**" in md
    assert ("auc >= 0.5000 (is %.4f)" % auc, True) in report.gate_results()
    assert report.curves.roc and report.curves.calibration and "FPR@0.5" in html


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_report_renders_offline_in_headless_chromium(task, request, tmp_path):
    from tests.headless_chromium import run_offline

    _, html, _, html_path = _report(request.getfixturevalue(f"{task}_run"), tmp_path)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    dom = run_offline("--virtual-time-budget=2000", "--dump-dom", f"file://{html_path}", tmp_path=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="verdict"' in dom.stdout and 'id="headline"' in dom.stdout and 'id="task-charts"' in dom.stdout
    assert len(re.findall(r'<table class="sortable slices"', dom.stdout)) == 1  # one slicing spec: g
    assert dom.stdout.count("<svg") >= 2  # the task's chart and the slice bars
    errors = [l for l in dom.stderr.splitlines() if "CONSOLE" in l and ("Error" in l or "Uncaught" in l)]
    assert not errors, errors


@pytest.mark.parametrize(
    "task, gates_line, first",
    [
        (
            "multiclass",
            "example_count >= 1; accuracy >= 0.4; log_loss <= 0.5; accuracy drop <= 0 vs the last blessed model; "
            "log_loss rise <= 0 vs the last blessed model",
            "accuracy",
        ),
        (
            "regression",
            "example_count >= 1; mean_absolute_error <= 2; r2 >= 0.5; root_mean_squared_error rise <= 0.05 vs the last "
            "blessed model; r2 drop <= 0.5 vs the last blessed model",
            "r2",
        ),
        ("binary", "example_count >= 1; auc >= 0.5; auc drop <= 0.01 vs the last blessed model", "auc"),
    ],
)
def test_run_summary_names_the_task_its_gates_and_headline(task, gates_line, first, request, caplog):
    """What `make run` prints at the end, from the evaluation as read_run_result reads it."""
    import logging

    import tensorflow_model_analysis as tfma

    import local_runner
    from metrics.results import HEADLINE, describe_failures
    from pipeline.run_outputs import RunResult, judged_by, overall_metrics

    run = request.getfixturevalue(f"{task}_run")
    validation = tfma.load_validation_result(run.output)
    result = RunResult(
        blessed=validation.validation_ok, evaluation_uri=run.output, failures=describe_failures(validation)
    )
    result.overall, result.baseline_overall = overall_metrics(run.output)
    result.task, result.gates = judged_by(run.output)
    assert (result.task, result.gates) == (task, gates_line)
    with caplog.at_level(logging.INFO, logger="pipeline.local"):
        local_runner.print_summary(result)
    lines = [r.getMessage() for r in caplog.records]
    assert f"  gates ({task}): {gates_line}" in lines
    shown = [line.split()[0] for line in lines if line.startswith("  ") and "(baseline " in line]
    assert shown == [n for n in HEADLINE[task]] and shown[0] == first
    value = result.overall[first]
    assert any(line.split()[:2] == [first, f"{value:.4f}"] for line in lines)


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_the_report_loads_what_tfma_loads_with_the_overall_plots_only(task, request):
    """The report's loader skips converting every slice's plots (nearly all of its time);
    the metrics, config and the overall slice's plots must be TFMA's own, for both models."""
    import tensorflow_model_analysis as tfma

    from reporting.model import _load_eval

    run = request.getfixturevalue(f"{task}_run")
    for model in ("candidate", "baseline"):
        ours, theirs = _load_eval(run.output, model), tfma.load_eval_result(run.output, model_name=model)
        assert ours.slicing_metrics == theirs.slicing_metrics and ours.config == theirs.config
        assert ours.model_location == theirs.model_location
        assert len(theirs.plots) > 1 and ours.plots == [p for p in theirs.plots if not p[0]]
    assert _load_eval(str(run.output) + "-missing", "candidate") is None
