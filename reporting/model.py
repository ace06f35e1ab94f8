"""What a report says, gathered from TFMA's output into plain data.

Kept apart from rendering so the HTML, the Markdown and the tests all read one set of
numbers, and so the tests can check the report against the evaluation it came from.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

HEADLINE = ("auc", "binary_accuracy", "auc_precision_recall", "precision", "recall", "calibration", "example_count")
TABLE_METRICS = ("example_count", "auc", "binary_accuracy", "precision", "recall", "calibration")


@dataclass(frozen=True)
class View:
    """What the report shows for a task: headline cards, slice-table columns, the metric
    slices are charted and ranked by, and the columns that show a change vs the baseline."""

    headline: tuple[str, ...]
    table: tuple[str, ...]
    rank: str
    deltas: tuple[str, ...]


VIEWS = {
    "binary": View(HEADLINE, TABLE_METRICS, "auc", ("auc", "binary_accuracy")),
    "multiclass": View(
        ("accuracy", "log_loss", "example_count"),
        ("example_count", "accuracy", "log_loss"),
        "accuracy",
        ("accuracy", "log_loss"),
    ),
    "regression": View(
        ("r2", "root_mean_squared_error", "mean_absolute_error", "mean_squared_error", "example_count"),
        ("example_count", "r2", "root_mean_squared_error", "mean_absolute_error"),
        "root_mean_squared_error",
        ("r2", "root_mean_squared_error"),
    ),
}
FAIRNESS = {"fall_out": "FPR", "miss_rate": "FNR", "predicted_positive_rate": "PPR", "false_discovery_rate": "FDR"}
CLASS_TO_KEY = {
    "FallOut": "fall_out",
    "MissRate": "miss_rate",
    "PredictedPositiveRate": "predicted_positive_rate",
    "FalseDiscoveryRate": "false_discovery_rate",
}


def lower_is_better(metric: str) -> bool:
    from metrics.gates import LOWER, METRICS

    return any(m.get(metric) == LOWER for m in METRICS.values())


@dataclass
class Gate:
    metric: str
    min_value: float | None = None
    max_value: float | None = None
    max_drop: float | None = None  # how much worse than the baseline it may get (in its direction)

    @property
    def lower_is_better(self) -> bool:
        return lower_is_better(self.metric)

    def misses(self, values: dict[str, float]) -> bool:
        value = values.get(self.metric, math.nan)  # NaN compares False: not flagged
        return (self.min_value is not None and value < self.min_value) or (
            self.max_value is not None and value > self.max_value
        )

    def regressed(self, values: dict[str, float]) -> bool:
        diff = values.get(f"{self.metric}_diff", 0.0)
        if self.max_drop is None:
            return False
        return diff > self.max_drop + 1e-9 if self.lower_is_better else diff < -self.max_drop - 1e-9


@dataclass
class SliceRow:
    spec: str  # e.g. "payment_type" or "payment_type x trip_start_day"
    name: str  # e.g. "payment_type=Cash"
    values: dict[str, float]
    baseline: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)  # "below threshold", "above threshold", "regressed", "small"

    @property
    def count(self) -> int:
        return int(self.values.get("example_count", 0))

    @property
    def bad(self) -> bool:
        return any(f in self.flags for f in ("below threshold", "above threshold", "regressed"))


@dataclass
class ClassRow:
    """One class of a multiclass model, on the whole eval set."""

    name: str
    support: float  # eval examples of this class
    precision: float
    recall: float
    baseline_precision: float | None = None
    baseline_recall: float | None = None


@dataclass
class ResidualBin:
    """Eval examples whose prediction falls in [low, high): their mean prediction and mean residual."""

    low: float
    high: float
    count: float
    mean_prediction: float
    mean_residual: float  # label - prediction


@dataclass
class Curves:
    calibration: list[tuple[float, float, float]] = field(default_factory=list)  # (mean pred, mean label, n)
    roc: list[tuple[float, float]] = field(default_factory=list)  # (fpr, tpr)
    pr: list[tuple[float, float]] = field(default_factory=list)  # (recall, precision)


@dataclass
class Report:
    blessed: bool
    failures: list[str]
    gates: list[Gate]
    overall: SliceRow
    specs: dict[str, list[SliceRow]]
    fairness_thresholds: list[float]
    curves: Curves
    baseline_curves: Curves | None
    has_baseline: bool
    small_slice_examples: int
    statistics: dict[str, dict] = field(default_factory=dict)  # split -> {"examples": n, "missing": {feature: frac}}
    anomalies: dict[str, list[str]] = field(default_factory=dict)
    source: str = ""
    task: str = "binary"
    classes: list[ClassRow] = field(default_factory=list)  # multiclass
    confusion: list[list[float]] = field(default_factory=list)  # multiclass: [actual][predicted], overall
    unknown_class_examples: float = 0.0  # multiclass: labels of no known class
    residuals: list[ResidualBin] = field(default_factory=list)  # regression, overall
    baseline_residuals: list[ResidualBin] = field(default_factory=list)
    # Continuous training (components/drift.py, modeling/warm_start.py): {"span", "previous_span",
    # "drift": [{feature, measure, value, threshold, drifted}], "warm_start": {warm_started, detail, steps}}.
    continuous: dict = field(default_factory=dict)
    edge: dict = field(default_factory=dict)  # EdgeExport's edge_report.json (empty: no edge models)

    @property
    def view(self) -> View:
        return VIEWS[self.task]

    def worst_slices(self, metric: str | None = None, n: int = 5) -> list[SliceRow]:
        metric = metric or self.view.rank
        rows = [
            r
            for rows in self.specs.values()
            for r in rows
            if "small" not in r.flags and not math.isnan(r.values.get(metric, math.nan))
        ]
        return sorted(rows, key=lambda r: r.values[metric], reverse=lower_is_better(metric))[:n]

    def gate_results(self) -> list[tuple[str, bool]]:
        """Each threshold in words, and whether the candidate met it (overall slice)."""
        out = []
        for g in self.gates:
            value = self.overall.values.get(g.metric)
            if g.min_value is not None and value is not None:
                out.append((f"{g.metric} >= {g.min_value:.4f} (is {value:.4f})", value >= g.min_value))
            if g.max_value is not None and value is not None:
                out.append((f"{g.metric} <= {g.max_value:.4f} (is {value:.4f})", value <= g.max_value))
            if g.max_drop is not None:
                diff = self.overall.values.get(f"{g.metric}_diff")
                side = "above" if g.lower_is_better else "below"
                if diff is None:
                    out.append((f"{g.metric} at most {g.max_drop:.4f} {side} baseline (no baseline yet)", True))
                else:
                    out.append(
                        (
                            f"{g.metric} at most {g.max_drop:.4f} {side} baseline (change {diff:+.4f})",
                            not g.regressed(self.overall.values),
                        )
                    )
        return out


def _flatten(metrics: dict, fairness_thresholds: list[float]) -> dict[str, float]:
    out = {}
    for name, value in metrics.items():
        if "doubleValue" in value:
            out[name] = float(value["doubleValue"])
        elif "arrayValue" in value:
            base = name.removesuffix("_diff")
            suffix = "_diff" if name.endswith("_diff") else ""
            for t, v in zip(fairness_thresholds, value["arrayValue"].get("float64Values", [])):
                out[f"{base}@{t:g}{suffix}"] = float(v)
    return out


def _undefined_when_one_class(values: dict[str, float]) -> dict[str, float]:
    """AUC needs both classes: in a slice where every label is the same (e.g. cash trips,
    whose tips are not recorded) TFMA reports 0, which would read as a failure."""
    if values.get("mean_label") in (0.0, 1.0):
        for name in ("auc", "auc_precision_recall", "auc_diff", "auc_precision_recall_diff"):
            if name in values:
                values[name] = math.nan
    return values


def _slice_spec_and_name(slice_key) -> tuple[str, str]:
    if not slice_key:
        return "Overall", "Overall"
    cols = [c for c, _ in slice_key]
    name = ", ".join(f"{c}={v.decode() if isinstance(v, bytes) else v}" for c, v in slice_key)
    return " x ".join(cols), name


def _class_name(metric) -> str:
    """TFMA's class name, also for the histogram-derived twins the pipeline configures."""
    from metrics.histogram import SUFFIX

    return metric.class_name.removesuffix(SUFFIX)


def _gates(eval_config) -> list[Gate]:
    """The gates the evaluation ran with, in the config's metric order."""
    from metrics.results import gates_in

    thresholds, max_drop = gates_in(eval_config)
    return [
        Gate(name, thresholds.get(name, {}).get("min"), thresholds.get(name, {}).get("max"), max_drop.get(name))
        for name in dict.fromkeys([*thresholds, *max_drop])
    ]


def _fairness_thresholds(eval_config) -> list[float]:
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            if _class_name(metric) in CLASS_TO_KEY and metric.config:
                return [float(t) for t in json.loads(metric.config).get("thresholds", [])]
    return []


def _curves(plots: dict) -> Curves:
    curves = Curves()
    inner = next(iter(next(iter(plots.values())).values())) if plots else {}
    buckets = inner.get("calibrationHistogramBuckets", {}).get("buckets", [])
    bins: list[list[float]] = [[0.0, 0.0, 0.0] for _ in range(20)]
    for b in buckets:
        n = b.get("numWeightedExamples", 0.0)
        if not n:
            continue
        lo = b.get("lowerThresholdInclusive", 0.0)
        lo = 0.0 if not isinstance(lo, (int, float)) else lo
        i = min(19, max(0, int(lo * 20)))
        bins[i][0] += b.get("totalWeightedRefinedPrediction", 0.0)
        bins[i][1] += b.get("totalWeightedLabel", 0.0)
        bins[i][2] += n
    curves.calibration = [(p / n, l / n, n) for p, l, n in bins if n]
    for m in inner.get("confusionMatrixAtThresholds", {}).get("matrices", []):
        tp, fp = m.get("truePositives", 0.0), m.get("falsePositives", 0.0)
        fn, tn = m.get("falseNegatives", 0.0), m.get("trueNegatives", 0.0)
        if tp + fn and fp + tn:
            curves.roc.append((fp / (fp + tn), tp / (tp + fn)))
        if tp + fp and tp + fn:
            curves.pr.append((tp / (tp + fn), tp / (tp + fp)))
    curves.roc.sort()
    curves.pr.sort()
    return curves


def _by_sub_key(metrics: dict) -> dict:
    """TFMA's {output: {sub_key: {metric: value}}} for the model's one output."""
    return metrics.get("") or next(iter(metrics.values()), {})


def _values(metrics: dict, fairness_thresholds: list[float]) -> dict[str, float]:
    return _undefined_when_one_class(_flatten(_by_sub_key(metrics).get("", {}), fairness_thresholds))


def _per_class(metrics: dict) -> dict[int, dict[str, float]]:
    out = {}
    for sub_key, named in _by_sub_key(metrics).items():
        if sub_key.startswith("classId:"):
            out[int(sub_key.split(":", 1)[1])] = {
                n: float(v["doubleValue"]) for n, v in named.items() if "doubleValue" in v
            }
    return out


def _class_names(eval_config) -> list[str]:
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            if metric.class_name in ("MultiClassPrecision", "MultiClassRecall") and metric.config:
                return list(json.loads(metric.config).get("classes", []))
    return []


def _plot(plots: dict, field_name: str) -> dict:
    return _by_sub_key(plots).get("", {}).get(field_name, {}) if plots else {}


def _confusion(plots: dict, k: int) -> tuple[list[list[float]], float]:
    """The argmax confusion matrix [actual][predicted] and the weight of unknown-class labels."""
    matrix = [[0.0] * k for _ in range(k)]
    unknown = 0.0
    for m in _plot(plots, "multiClassConfusionMatrixAtThresholds").get("matrices", [])[:1]:
        for e in m.get("entries", []):
            actual, predicted = e.get("actualClassId", 0), e.get("predictedClassId", 0)
            n = e.get("numWeightedExamples", 0.0)
            if 0 <= actual < k and 0 <= predicted < k:
                matrix[actual][predicted] += n
            else:
                unknown += n
    return matrix, unknown


def _residuals(plots: dict) -> list[ResidualBin]:
    bins = []
    for b in _plot(plots, "calibrationHistogramBuckets").get("buckets", []):
        n = b.get("numWeightedExamples", 0.0)
        if n:
            p, y = b.get("totalWeightedRefinedPrediction", 0.0), b.get("totalWeightedLabel", 0.0)
            bins.append(
                ResidualBin(
                    b.get("lowerThresholdInclusive", 0.0), b.get("upperThresholdExclusive", 0.0), n, p / n, (y - p) / n
                )
            )
    return bins


def load_report(
    evaluation_uri: str,
    statistics_uri: str | None = None,
    anomalies_uri: str | None = None,
    small_slice_examples: int = 50,
) -> Report:
    import tensorflow_model_analysis as tfma

    from metrics.results import describe_failures, task_of

    validation = tfma.load_validation_result(evaluation_uri)
    # With a baseline TFMA names the models "candidate" and "baseline"; without, one model "".
    candidate = _load_eval(evaluation_uri, "candidate") or _load_eval(evaluation_uri, None)
    if candidate is None:
        raise ValueError(f"no evaluation results in {evaluation_uri}")
    baseline = _load_eval(evaluation_uri, "baseline")
    config = candidate.config
    task = task_of(config)
    fairness_thresholds = _fairness_thresholds(config)
    gates = _gates(config)
    base_by_slice = {}
    if baseline is not None:
        for key, metrics in baseline.slicing_metrics:
            base_by_slice[tuple(key)] = _values(metrics, fairness_thresholds)

    specs: dict[str, list[SliceRow]] = {}
    overall = None
    overall_metrics = base_overall_metrics = {}
    for key, metrics in candidate.slicing_metrics:
        values = _values(metrics, fairness_thresholds)
        spec, name = _slice_spec_and_name(key)
        row = SliceRow(spec, name, values, base_by_slice.get(tuple(key), {}))
        if row.count < small_slice_examples:
            row.flags.append("small")
        for g in gates:
            if g.misses(values):
                flag = (
                    "below threshold"
                    if g.min_value is not None and values[g.metric] < g.min_value
                    else "above threshold"
                )
                if flag not in row.flags:
                    row.flags.append(flag)
        if any(g.regressed(values) for g in gates):
            row.flags.append("regressed")
        if not key:
            overall, overall_metrics = row, metrics
        else:
            specs.setdefault(spec, []).append(row)
    for rows in specs.values():
        rows.sort(key=lambda r: -r.count)
    if overall is None:
        raise ValueError(f"{evaluation_uri} has no overall slice")
    if baseline is not None:
        base_overall_metrics = next((m for k, m in baseline.slicing_metrics if not k), {})

    plots = {tuple(k): p for k, p in candidate.plots}
    base_plots = {tuple(k): p for k, p in baseline.plots} if baseline is not None else {}
    binary = task == "binary"
    report = Report(
        blessed=bool(validation.validation_ok),
        failures=describe_failures(validation),
        gates=gates,
        overall=overall,
        specs=specs,
        fairness_thresholds=fairness_thresholds,
        curves=_curves(plots.get((), {})) if binary else Curves(),
        baseline_curves=_curves(base_plots[()]) if binary and () in base_plots else None,
        has_baseline=baseline is not None,
        small_slice_examples=small_slice_examples,
        source=evaluation_uri,
        task=task,
    )
    if task == "multiclass":
        names = _class_names(config)
        report.confusion, report.unknown_class_examples = _confusion(plots.get((), {}), len(names))
        ours, theirs = _per_class(overall_metrics), _per_class(base_overall_metrics)
        for c, name in enumerate(names):
            mine, base = ours.get(c, {}), theirs.get(c, {})
            report.classes.append(
                ClassRow(
                    name,
                    sum(report.confusion[c]),
                    mine.get("precision", math.nan),
                    mine.get("recall", math.nan),
                    base.get("precision") if baseline is not None else None,
                    base.get("recall") if baseline is not None else None,
                )
            )
    elif task == "regression":
        report.residuals = _residuals(plots.get((), {}))
        report.baseline_residuals = _residuals(base_plots.get((), {}))
    if statistics_uri:
        report.statistics = load_statistics(statistics_uri)
    if anomalies_uri:
        from components.anomalies import read_anomalies

        report.anomalies = read_anomalies(anomalies_uri)
    return report


def _load_eval(uri: str, model_name: str | None):
    """tfma.load_eval_result's steps (api/model_eval_lib.py, TFMA 0.48), with the plots of the
    overall slice only: the report draws no other, and turning every slice's plots into dicts
    (a 1,000-bucket calibration plot and a 1,000-threshold confusion plot per slice, through
    protobuf's json_format) was nearly all of the report's time, e.g. 105 of 110 s profiled
    on 285 slices of a loaded machine."""
    from tensorflow_model_analysis.view import util as view_util
    from tensorflow_model_analysis.view import view_types
    from tensorflow_model_analysis.writers import eval_config_writer
    from tensorflow_model_analysis.writers import metrics_plots_and_validations_writer as mpv

    try:
        config, data_location, file_format, model_locations = eval_config_writer.load_eval_run(uri)
        metrics = [
            m
            for m in (
                view_util.convert_metrics_proto_to_dict(p, model_name=model_name)
                for p in mpv.load_and_deserialize_metrics(uri, "tfrecord")
            )
            if m is not None
        ]
        plots = [
            p
            for p in (
                view_util.convert_plots_proto_to_dict(p, model_name=model_name)
                for p in mpv.load_and_deserialize_plots(uri, "tfrecord")
                if not p.slice_key.single_slice_keys and not p.HasField("cross_slice_key")
            )
            if p is not None
        ]
        location = (
            model_locations.get(model_name, "") if model_name is not None else next(iter(model_locations.values()), "")
        )
    except Exception:
        return None
    result = view_types.EvalResult(
        slicing_metrics=metrics,
        plots=plots,
        attributions=[],
        config=config,
        data_location=data_location,
        file_format=file_format,
        model_location=location,
    )
    if model_name == "baseline" and not any(s.is_baseline for s in result.config.model_specs):
        return None
    return result if result.slicing_metrics else None


def load_statistics(statistics_uri: str) -> dict[str, dict]:
    from tensorflow_metadata.proto.v0 import statistics_pb2

    out = {}
    for entry in sorted(os.listdir(statistics_uri)):
        path = os.path.join(statistics_uri, entry, "FeatureStats.pb")
        if not entry.startswith("Split-") or not os.path.exists(path):
            continue
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        with open(path, "rb") as f:
            stats.ParseFromString(f.read())
        ds = stats.datasets[0]
        missing = {}
        for feat in ds.features:
            common = feat.num_stats.common_stats if feat.HasField("num_stats") else feat.string_stats.common_stats
            if ds.num_examples:
                missing[feat.path.step[0]] = common.num_missing / ds.num_examples
        out[entry.removeprefix("Split-")] = {"examples": int(ds.num_examples), "missing": missing}
    return out


def continuous_training(drift_artifact=None, model_run_uri: str | None = None) -> dict:
    """What the report says about spans, drift and warm start, from DriftCheck's output
    artifact and the Trainer's model_run directory (either may be absent)."""
    out: dict = {}
    if drift_artifact is not None:
        out["span"] = drift_artifact.get_int_custom_property("new_span")
        out["previous_span"] = drift_artifact.get_int_custom_property("previous_span")
        out["drift"] = json.loads(drift_artifact.get_string_custom_property("drift") or "[]")
    if model_run_uri:
        from modeling.warm_start import read_status

        status = read_status(model_run_uri)
        if status is not None:
            out["warm_start"] = status
    return out


def load_edge_report(edge_uri: str) -> dict:
    """EdgeExport's report, or {} when it converted nothing (the model was not blessed)."""
    path = os.path.join(edge_uri, "edge_report.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)
