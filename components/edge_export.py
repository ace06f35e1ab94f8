"""EdgeExport: the blessed model as LiteRT models (float, int8), judged beside the SavedModel.

After the Evaluator: only a blessed model is worth converting. Each LiteRT model is scored
on the eval split by the same code as the SavedModel (modeling/edge.py), and a variant is
published with the pushed version (the Pusher copies `litert/` into the version's
assets.extra/, which TF Serving ignores) only while its headline metrics stay within
`max_drop` of the SavedModel's: a quantized model that lost accuracy never reaches a device
unnoticed. The numbers go to edge_report.json, the slice report and the run summary.
"""

import json
import logging
import os
import tempfile

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.artifact import Artifact
from tfx.types.standard_artifacts import Examples, Model, ModelBlessing, TransformGraph

LOG = logging.getLogger(__name__)
PROGRESS = logging.getLogger("pipeline.edge")
PUBLISH_DIR = "litert"  # what the Pusher copies into assets.extra/
REPORT_FILE = "edge_report.json"
VARIANTS = ("float", "int8")
# Per task, when edge_max_drop is empty. Regression errors have the label's unit: 1% of the
# SavedModel's own error.
DEFAULT_MAX_DROP = {"binary": {"auc": 0.005}, "multiclass": {"accuracy": 0.01}}
REGRESSION_DEFAULT_SHARE = 0.01
LATENCY_EXAMPLES = 100
MAX_EVAL_EXAMPLES = 20_000


class EdgeModel(Artifact):
    """LiteRT models, edge_features.json and edge_report.json (title: see SliceReportFiles)."""

    TYPE_NAME = "components.EdgeModel"


def _records(examples_uri: str, split: str, limit: int | None) -> list[bytes]:
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    if not files:
        raise FileNotFoundError(f"edge export: no {split} examples under {examples_uri}")
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP" if files[0].endswith(".gz") else "")
    return [r.numpy() for r in (ds.take(limit) if limit else ds)]


def _median_ms(fn, items) -> float:
    import time

    import numpy as np

    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


class _Clock:
    """Wall seconds per phase, kept in the report: the step runs in every blessed run."""

    def __init__(self):
        import time

        self._now = time.perf_counter
        self._last = self._now()
        self.laps: dict[str, float] = {}

    def __call__(self, phase: str) -> None:
        now = self._now()
        self.laps[phase] = round(now - self._last, 2)
        self._last = now


def _gate(task: str, reference: dict, variant: dict, max_drop: dict) -> tuple[dict, list[str]]:
    from modeling.edge import LOWER_IS_BETTER

    limits = dict(max_drop or DEFAULT_MAX_DROP.get(task, {}))
    if not limits and task == "regression":
        limits = {"root_mean_squared_error": REGRESSION_DEFAULT_SHARE * reference["root_mean_squared_error"]}
    failures = []
    for name, allowed in limits.items():
        if name not in reference:
            failures.append(f"{name}: not a {task} metric here ({', '.join(reference)})")
            continue
        drop = (variant[name] - reference[name]) if name in LOWER_IS_BETTER else (reference[name] - variant[name])
        if drop > allowed + 1e-12:
            failures.append(f"{name} drop {drop:.4f} > {allowed:g}")
    return limits, failures


def export(
    examples_uri: str,
    model_uri: str,
    transform_uri: str,
    out_dir: str,
    plan_json: str,
    max_drop: dict,
    representative_examples: int,
) -> dict:
    """Convert, evaluate, gate; write the files into out_dir. Returns the report."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft
    from tfx.utils import path_utils

    from modeling import edge
    from modeling.edge_features import SPEC_FILE, EdgeFeatures, record_of_example
    from modeling.roles import LABEL_KEY, Plan

    clock = _Clock()
    plan = Plan.from_json(plan_json)
    tto = tft.TFTransformOutput(transform_uri)
    model_dir = path_utils.serving_model_path(model_uri)
    train = _records(examples_uri, "train", representative_examples)
    evaluation = _records(examples_uri, "eval", MAX_EVAL_EXAMPLES)

    clock("read")
    spec = edge.feature_spec(plan, tto, train[0])
    clock("features")
    feature_diff = edge.check_features(spec, tto, evaluation)
    inputs = edge.edge_inputs(spec, evaluation)
    clock("features_check")

    saved = tf.saved_model.load(model_dir)
    serve = saved.signatures["serving_default"]
    batches = [evaluation[i : i + 1000] for i in range(0, len(evaluation), 1000)]
    reference = np.concatenate([serve(examples=tf.constant(b))[plan.output_key].numpy() for b in batches])
    labels = np.concatenate(
        [saved.signatures["transform_features"](examples=tf.constant(b))[LABEL_KEY].numpy() for b in batches]
    ).reshape(-1)
    sample = evaluation[:LATENCY_EXAMPLES]
    report = {
        "task": plan.task,
        "eval_examples": len(evaluation),
        "representative_examples": len(train),
        "feature_max_abs_diff": feature_diff,
        "savedmodel": {
            "metrics": edge.metrics(plan.task, labels, reference),
            "latency_ms": _median_ms(lambda e: serve(examples=tf.constant([e])), sample),
            "bytes": sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(model_dir) for f in fs),
        },
    }
    clock("savedmodel_eval")
    with tempfile.TemporaryDirectory() as tmp:
        keras_part = edge.save_edge_model(saved, plan, tmp)
        clock("keras_part")
        models = {"float": edge.convert(keras_part), "int8": edge.convert(keras_part, edge.edge_inputs(spec, train))}
        clock("convert")
    transform = EdgeFeatures(spec)
    names = [f["name"] for f in spec["features"]]
    records = [record_of_example(tf.train.Example.FromString(e), names) for e in sample]
    os.makedirs(os.path.join(out_dir, PUBLISH_DIR), exist_ok=True)
    published = []
    for name, content in models.items():
        runner = edge.EdgeRunner(content, plan.output_key)
        scores = runner(inputs)

        def one(record, runner=runner):
            row = transform(record)
            return runner({k: np.array([[row[k]]], dtype=v.dtype) for k, v in inputs.items()})

        result = {
            "metrics": edge.metrics(plan.task, labels, scores),
            "max_abs_diff": float(np.max(np.abs(scores - reference))),
            "bytes": len(content),
            "latency_ms": _median_ms(one, records),
        }
        if name == "int8":
            result["float_ops"] = edge.float_ops(content)
        result["max_drop"], result["failures"] = _gate(
            plan.task, report["savedmodel"]["metrics"], result["metrics"], max_drop
        )
        result["published"] = not result["failures"]
        report[name] = result
        with open(os.path.join(out_dir, f"model_{name}.tflite"), "wb") as f:
            f.write(content)
        if result["published"]:
            published.append(name)
            with open(os.path.join(out_dir, PUBLISH_DIR, f"model_{name}.tflite"), "wb") as f:
                f.write(content)
    report["published"] = published
    clock("edge_eval")
    report["seconds"] = clock.laps
    for where in (out_dir, os.path.join(out_dir, PUBLISH_DIR)):
        with open(os.path.join(where, SPEC_FILE), "w") as f:
            json.dump(spec, f, indent=1)
        with open(os.path.join(where, REPORT_FILE), "w") as f:
            json.dump(report, f, indent=1)
    if not published:  # nothing for the Pusher to copy
        for name in os.listdir(os.path.join(out_dir, PUBLISH_DIR)):
            os.remove(os.path.join(out_dir, PUBLISH_DIR, name))
        os.rmdir(os.path.join(out_dir, PUBLISH_DIR))
    return report


def describe(report: dict) -> list[str]:
    """The run summary's lines: each variant's metric deltas, size, latency and verdict."""
    base = report["savedmodel"]
    lines = [
        f"edge: SavedModel {base['bytes'] / 1e6:.2f} MB, {base['latency_ms']:.2f} ms/example; "
        f"features equal to Transform's within {report['feature_max_abs_diff']:.1e}"
    ]
    for name in VARIANTS:
        v = report.get(name)
        if not v:
            continue
        deltas = ", ".join(
            f"{m} {v['metrics'][m]:.4f} ({v['metrics'][m] - base['metrics'][m]:+.4f})" for m in base["metrics"]
        )
        verdict = "published" if v["published"] else "NOT published: " + "; ".join(v["failures"])
        lines.append(
            f"edge {name:5s}: {deltas}; max |diff| {v['max_abs_diff']:.2e}; "
            f"{v['bytes'] / 1e3:.1f} kB; {v['latency_ms']:.3f} ms/example; {verdict}"
        )
    return lines


@component
def EdgeExport(
    examples: InputArtifact[Examples],
    model: InputArtifact[Model],
    transform_graph: InputArtifact[TransformGraph],
    blessing: InputArtifact[ModelBlessing],
    edge_model: OutputArtifact[EdgeModel],
    plan: Parameter[str],
    max_drop: Parameter[str] = "{}",
    representative_examples: Parameter[int] = 1000,
):
    if not blessing.get_int_custom_property("blessed"):
        PROGRESS.info("EdgeExport: the model is not blessed; nothing to convert")
        edge_model.set_string_custom_property("published", "")
        return
    report = export(
        examples.uri,
        model.uri,
        transform_graph.uri,
        edge_model.uri,
        plan,
        json.loads(max_drop),
        representative_examples,
    )
    for line in describe(report):
        LOG.info("%s", line)
    edge_model.set_string_custom_property("published", ",".join(report["published"]))
