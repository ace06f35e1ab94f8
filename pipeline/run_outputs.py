"""Reading a finished run back from ML Metadata: what each component produced.

The local runner's summary, the tests and the notebooks all ask the same questions
(was the model blessed, what did it score, where was it pushed), so they ask here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)


def open_store(metadata_path: str) -> mlmd.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return mlmd.MetadataStore(config)


def latest_execution(store: mlmd.MetadataStore, pipeline_name: str, node_id: str):
    """The newest execution of a node (cached executions count), or None."""
    context = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")
    if context is None:
        return None
    executions = store.get_executions_by_context(context.id)
    return max(executions, key=lambda e: (e.create_time_since_epoch, e.id), default=None)


def outputs_of(store: mlmd.MetadataStore, execution) -> dict[str, list[metadata_store_pb2.Artifact]]:
    events = [e for e in store.get_events_by_execution_ids([execution.id]) if e.type in _OUTPUT_EVENTS]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    out: dict[str, list] = {}
    for event in events:
        key = event.path.steps[0].key if event.path.steps else ""
        out.setdefault(key, []).append(artifacts[event.artifact_id])
    return out


def latest_outputs(store, pipeline_name: str, node_id: str) -> dict[str, list]:
    execution = latest_execution(store, pipeline_name, node_id)
    return outputs_of(store, execution) if execution else {}


@dataclass
class RunResult:
    blessed: bool | None = None
    evaluation_uri: str | None = None
    task: str | None = None            # binary, multiclass or regression: what the Evaluator judged
    gates: str | None = None           # the gates in force, in words (pipeline.gates.describe)
    failures: list[str] = field(default_factory=list)
    overall: dict[str, float] = field(default_factory=dict)
    baseline_overall: dict[str, float] = field(default_factory=dict)
    infra_blessed: bool | None = None  # None: InfraValidator did not run
    pushed_to: str | None = None
    model_uri: str | None = None
    report_dir: str | None = None
    edge_report: dict | None = None    # EdgeExport's edge_report.json; None: it did not convert


def overall_metrics(evaluation_uri: str) -> tuple[dict[str, float], dict[str, float]]:
    """(candidate, baseline) metrics of the overall slice: plain values only (no
    thresholded sub-keys, no diffs).

    Why not tfma.load_eval_result: it loads every slice and every plot of a model, which
    took 2-9 s per model here; this reads only the metrics file (milliseconds).
    """
    import tensorflow_model_analysis as tfma

    candidate: dict[str, float] = {}
    baseline: dict[str, float] = {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        if per_slice.slice_key.single_slice_keys:
            continue  # not the overall slice
        for kv in per_slice.metric_keys_and_values:
            key = kv.key
            if key.HasField("sub_key") or key.is_diff or key.output_name or not kv.value.HasField("double_value"):
                continue
            target = baseline if key.model_name == "baseline" else candidate
            target[key.name] = float(kv.value.double_value.value)
    return candidate, baseline


def read_run_result(metadata_path: str, pipeline_name: str) -> RunResult:
    import tensorflow_model_analysis as tfma

    store = open_store(metadata_path)
    result = RunResult()
    trainer = latest_outputs(store, pipeline_name, "Trainer")
    if trainer.get("model"):
        result.model_uri = trainer["model"][0].uri
    evaluator = latest_outputs(store, pipeline_name, "Evaluator")
    if evaluator.get("evaluation"):
        uri = evaluator["evaluation"][0].uri
        result.evaluation_uri = uri
        validation = tfma.load_validation_result(uri)
        result.blessed = bool(validation.validation_ok)
        result.failures = describe_failures(validation)
        result.overall, result.baseline_overall = overall_metrics(uri)
        result.task, result.gates = judged_by(uri)
    report = latest_outputs(store, pipeline_name, "SliceReport")
    if report.get("report"):
        result.report_dir = report["report"][0].uri
    infra = latest_outputs(store, pipeline_name, "InfraValidator")
    if infra.get("blessing"):
        props = infra["blessing"][0].custom_properties
        result.infra_blessed = bool(props["blessed"].int_value) if "blessed" in props else None
    edge = latest_outputs(store, pipeline_name, "EdgeExport")
    if edge.get("edge_model"):
        path = os.path.join(edge["edge_model"][0].uri, "edge_report.json")
        if os.path.exists(path):
            with open(path) as f:
                result.edge_report = json.load(f)
    pusher = latest_outputs(store, pipeline_name, "Pusher")
    if pusher.get("pushed_model"):
        props = pusher["pushed_model"][0].custom_properties
        if props.get("pushed") and props["pushed"].int_value == 1:
            result.pushed_to = props["pushed_destination"].string_value
    return result


def judged_by(evaluation_uri: str) -> tuple[str, str]:
    """(task, gates in words) of a finished evaluation, read from the config it ran with."""
    from pipeline import evaluation, gates

    config = evaluation.load_config(evaluation_uri)
    task = evaluation.task_of(config)
    return task, gates.describe(task, *evaluation.gates_in(config))


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
            lines.append(f"{_metric_label(f.metric_key)} = {shown}, "
                         f"needs {_bound_text(f.metric_threshold)} [{slice_name}]")
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
    parts = [f"{c.column}={c.bytes_value.decode() if c.HasField('bytes_value') else (c.int64_value if c.HasField('int64_value') else c.float_value)}"
             for c in slice_key.single_slice_keys]
    return ", ".join(parts) or "Overall"
