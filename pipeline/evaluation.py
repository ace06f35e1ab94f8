"""The TFMA EvalConfig: what the Evaluator measures per task, per slice, and what blesses a model.

One metric list per task (binary, multiclass, regression); the gates of metrics/gates.py
attach to the metric of the same name. Thresholds bound the overall slice only; `max_drop`
becomes a change threshold against the baseline model, in the metric's direction (for a
lower-is-better metric such as log_loss the candidate may be at most that much higher).
"""

from __future__ import annotations

import json

# TFMA 0.52's top-level module lists but does not export its config protos, so they
# come from config_pb2 directly.
from tensorflow_model_analysis.proto import config_pb2 as tfma

from metrics import gates, histogram, multiclass, regression

# TFMA's extractors with a cheaper slice-key step (metrics/slicing.py says why); TFX's
# Evaluator calls its custom_extractors.
EXTRACTORS_MODULE = "metrics.slicing"

FAIRNESS_METRICS = ("FallOut", "MissRate", "PredictedPositiveRate", "FalseDiscoveryRate")


def from_histogram(class_name: str, **kwargs) -> tfma.MetricConfig:
    """TFMA's metric `class_name`, computed from the AUC's prediction histogram (see
    metrics/histogram.py): same name and value, a fraction of the cost."""
    return tfma.MetricConfig(class_name=class_name + histogram.SUFFIX, module=histogram.__name__, **kwargs)


def _ours(module, class_name: str, **config) -> tfma.MetricConfig:
    return tfma.MetricConfig(class_name=class_name, module=module.__name__, config=json.dumps(config) if config else "")


def slicing_specs(cfg) -> list[tfma.SlicingSpec]:
    specs = [tfma.SlicingSpec()]  # overall
    specs += [tfma.SlicingSpec(feature_keys=[key]) for key in cfg.slicing_features]
    specs += [tfma.SlicingSpec(feature_keys=list(cross)) for cross in cfg.slicing_crosses]
    return specs


def overall_only(threshold: tfma.MetricThreshold) -> tfma.PerSliceMetricThreshold:
    """Gate on the whole eval set: a small slice's noise must not block a release.
    Per-slice results are still computed and reported."""
    return tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)


def metric_threshold(task: str, name: str, bounds: dict | None, drop: float | None) -> tfma.MetricThreshold:
    """`bounds` ({"min": x, "max": y}) on the value; `drop`: how much worse than the baseline."""
    threshold = tfma.MetricThreshold()
    if bounds:
        if "min" in bounds:
            threshold.value_threshold.lower_bound.value = bounds["min"]
        if "max" in bounds:
            threshold.value_threshold.upper_bound.value = bounds["max"]
    if drop is not None:
        # The 1e-10 keeps an unchanged metric (a diff of exactly -drop) from failing on rounding.
        if gates.METRICS[task][name] == gates.LOWER:
            threshold.change_threshold.direction = tfma.MetricDirection.LOWER_IS_BETTER
            threshold.change_threshold.absolute.value = drop + 1e-10
        else:
            threshold.change_threshold.direction = tfma.MetricDirection.HIGHER_IS_BETTER
            threshold.change_threshold.absolute.value = -drop - 1e-10
    return threshold


def _binary_metrics(cfg, plan) -> list[tuple[str | None, tfma.MetricConfig]]:
    # Fairness indicators: the error rates that Fairness Indicators reports, computed
    # per slice at each decision threshold with TFMA's own metrics (the
    # fairness-indicators package cannot be installed beside TFX 1.21).
    fairness = json.dumps({"thresholds": list(cfg.fairness_thresholds)})
    return [
        ("example_count", tfma.MetricConfig(class_name="ExampleCount")),
        ("auc", from_histogram("AUC")),
        ("auc_precision_recall", from_histogram("AUCPrecisionRecall")),
        ("binary_accuracy", from_histogram("BinaryAccuracy")),
        ("precision", from_histogram("Precision")),
        ("recall", from_histogram("Recall")),
        ("mean_label", from_histogram("MeanLabel")),
        ("mean_prediction", from_histogram("MeanPrediction")),
        ("calibration", from_histogram("Calibration")),
        (None, tfma.MetricConfig(class_name="CalibrationPlot")),
        (None, tfma.MetricConfig(class_name="ConfusionMatrixPlot")),
    ] + [(None, from_histogram(name, config=fairness)) for name in FAIRNESS_METRICS]


def _multiclass_metrics(cfg, plan) -> list[tuple[str | None, tfma.MetricConfig]]:
    m = multiclass
    return [
        ("example_count", tfma.MetricConfig(class_name="ExampleCount")),
        ("accuracy", _ours(m, "MultiClassAccuracy")),
        ("log_loss", _ours(m, "LogLoss")),
        # Per class (sub key classId:N); the class names ride along for the report.
        (None, _ours(m, "MultiClassPrecision", classes=list(plan.classes))),
        (None, _ours(m, "MultiClassRecall", classes=list(plan.classes))),
        (None, tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot")),
    ]


def _regression_metrics(cfg, plan) -> list[tuple[str | None, tfma.MetricConfig]]:
    r = regression
    return [
        ("example_count", tfma.MetricConfig(class_name="ExampleCount")),
        ("mean_absolute_error", tfma.MetricConfig(class_name="MeanAbsoluteError")),
        ("mean_squared_error", tfma.MetricConfig(class_name="MeanSquaredError")),
        ("root_mean_squared_error", _ours(r, "RootMeanSquaredError")),
        ("r2", _ours(r, "RSquared")),
        (None, _ours(r, "ResidualPlot")),
    ]


METRICS_BY_TASK = {"binary": _binary_metrics, "multiclass": _multiclass_metrics, "regression": _regression_metrics}


def eval_config(cfg, plan) -> tfma.EvalConfig:
    """What the Evaluator computes and gates for `plan.task` (a modeling.roles.Plan).

    `cfg` gives the slicing (slicing_features, slicing_crosses), the fairness thresholds
    (binary only) and the gates (`thresholds`, `max_drop`; the task's defaults when unset).
    Raises gates.GateError for a gate that names no metric of the task.
    """
    task = plan.task
    thresholds, max_drop = gates.gates_for(
        task, getattr(cfg, "thresholds", None) or {}, getattr(cfg, "max_drop", None) or {}
    )
    metrics = []
    for name, metric in METRICS_BY_TASK[task](cfg, plan):
        if name in thresholds or name in max_drop:
            metric.per_slice_thresholds.append(
                overall_only(metric_threshold(task, name, thresholds.get(name), max_drop.get(name)))
            )
        metrics.append(metric)
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name="serving_default",
                preprocessing_function_names=["transform_features"],
                label_key=plan.label_key,
                prediction_key=plan.output_key,
            )
        ],
        slicing_specs=slicing_specs(cfg),
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )


def load_config(evaluation_uri: str) -> tfma.EvalConfig:
    """The EvalConfig an Evaluator output was made with (its eval_config.json; milliseconds)."""
    from tensorflow_model_analysis.writers import eval_config_writer

    return eval_config_writer.load_eval_run(evaluation_uri)[0]
