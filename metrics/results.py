"""How a finished evaluation reads: which task it was for, which gates judged it, what the
run leads with, and TFMA's failed thresholds in words.

The run's summary (pipeline/run_outputs.py) and the slice report (reporting/) read the same
Evaluator output; both ask here, so they cannot disagree.
"""

from __future__ import annotations

# A class only this task's config holds: how a finished evaluation tells its task.
_TASK_MARKERS = {"MultiClassAccuracy": "multiclass", "RSquared": "regression"}


def task_of(config) -> str:
    """The task an EvalConfig made by eval_config() was for (as a finished evaluation stores it)."""
    for spec in config.metrics_specs:
        for metric in spec.metrics:
            if metric.class_name in _TASK_MARKERS:
                return _TASK_MARKERS[metric.class_name]
    return "binary"


# What the run's summary leads with, per task (TFMA's names, overall slice).
HEADLINE = {
    "binary": ("auc", "binary_accuracy", "auc_precision_recall", "precision", "recall", "example_count"),
    "multiclass": ("accuracy", "log_loss", "example_count"),
    "regression": ("r2", "root_mean_squared_error", "mean_absolute_error", "mean_squared_error", "example_count"),
}


def gates_in(config) -> tuple[dict, dict]:
    """The gates an EvalConfig holds, as (thresholds, max_drop) in the configuration's shape:
    what a finished evaluation was actually judged by."""
    from tensorflow_model_analysis.metrics import metric_specs

    thresholds: dict[str, dict[str, float]] = {}
    max_drop: dict[str, float] = {}
    for spec in config.metrics_specs:
        for metric in spec.metrics:
            found = [t.threshold for t in metric.per_slice_thresholds]
            if metric.HasField("threshold"):
                found.append(metric.threshold)
            if not found:
                continue
            name = metric_specs.metric_instance(metric).name
            for t in found:
                if t.HasField("value_threshold"):
                    v = t.value_threshold
                    bounds = thresholds.setdefault(name, {})
                    if v.HasField("lower_bound"):
                        bounds["min"] = v.lower_bound.value
                    if v.HasField("upper_bound"):
                        bounds["max"] = v.upper_bound.value
                if t.HasField("change_threshold") and t.change_threshold.HasField("absolute"):
                    max_drop[name] = round(abs(t.change_threshold.absolute.value), 9)
    return thresholds, max_drop


def describe_failures(validation) -> list[str]:
    """Human lines for TFMA's failed thresholds, e.g.
    'auc = 0.6100, needs >= 0.7000 [Overall]' or
    'log_loss change vs baseline = +0.0300, needs change <= +0.0100 [Overall]'."""
    lines = []
    for failure in validation.metric_validations_per_slice:
        slice_name = _slice_name(failure.slice_key)
        for f in failure.failures:
            value = f.metric_value.double_value.value
            shown = f"{value:+.4f}" if f.metric_key.is_diff else f"{value:.4f}"
            lines.append(
                f"{_metric_label(f.metric_key)} = {shown}, needs {_bound_text(f.metric_threshold)} [{slice_name}]"
            )
    if validation.missing_thresholds:  # a bool in TFMA's ValidationResult
        lines.append("no threshold could be checked (TFMA blesses nothing without one)")
    return lines


def _metric_label(key) -> str:
    return f"{key.name} change vs baseline" if key.is_diff else key.name


def _bound_text(threshold) -> str:
    if threshold.HasField("value_threshold"):
        v = threshold.value_threshold
        parts = []
        if v.HasField("lower_bound"):
            parts.append(f">= {v.lower_bound.value:.4f}")
        if v.HasField("upper_bound"):
            parts.append(f"<= {v.upper_bound.value:.4f}")
        return " and ".join(parts)
    from tensorflow_model_analysis.proto import config_pb2

    c = threshold.change_threshold
    if not c.HasField("absolute"):
        return "a smaller change"
    lower_is_better = c.direction == config_pb2.MetricDirection.LOWER_IS_BETTER
    return f"change {'<=' if lower_is_better else '>='} {c.absolute.value:+.4f}"


def _slice_name(slice_key) -> str:
    parts = [
        f"{c.column}={c.bytes_value.decode() if c.HasField('bytes_value') else (c.int64_value if c.HasField('int64_value') else c.float_value)}"
        for c in slice_key.single_slice_keys
    ]
    return ", ".join(parts) or "Overall"
