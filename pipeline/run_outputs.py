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

from metrics.results import describe_failures

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
    task: str | None = None  # binary, multiclass or regression: what the Evaluator judged
    gates: str | None = None  # the gates in force, in words (metrics.gates.describe)
    failures: list[str] = field(default_factory=list)
    overall: dict[str, float] = field(default_factory=dict)
    baseline_overall: dict[str, float] = field(default_factory=dict)
    infra_blessed: bool | None = None  # None: InfraValidator did not run
    pushed_to: str | None = None
    model_uri: str | None = None
    report_dir: str | None = None
    # Continuous training: the span read ({span: records} of the window), warm start, drift.
    span: int | None = None
    window: dict[str, int] = field(default_factory=dict)
    warm_start: dict | None = None
    drift: list[dict] | None = None
    edge_report: dict | None = None  # EdgeExport's edge_report.json; None: it did not convert


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
    read_continuous_training(store, pipeline_name, result)
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
    from metrics import gates, results
    from pipeline import evaluation

    config = evaluation.load_config(evaluation_uri)
    task = results.task_of(config)
    return task, gates.describe(task, *results.gates_in(config))


def read_continuous_training(store, pipeline_name: str, result: RunResult) -> None:
    """The span, window, warm start and drift of the latest run, where it had them."""
    import json

    from components.drift import DRIFT_PROPERTY
    from components.example_gen import WINDOW_PROPERTY
    from modeling.warm_start import read_status

    examples = latest_outputs(store, pipeline_name, "ImportExampleGen").get("examples")
    if examples and WINDOW_PROPERTY in examples[0].custom_properties:
        result.window = json.loads(examples[0].custom_properties[WINDOW_PROPERTY].string_value)
        result.span = examples[0].properties["span"].int_value if "span" in examples[0].properties else None
    drift = latest_outputs(store, pipeline_name, "DriftCheck").get("drift")
    if drift and DRIFT_PROPERTY in drift[0].custom_properties:
        result.drift = json.loads(drift[0].custom_properties[DRIFT_PROPERTY].string_value)
    run = latest_outputs(store, pipeline_name, "Trainer").get("model_run")
    if run:
        result.warm_start = read_status(run[0].uri)
