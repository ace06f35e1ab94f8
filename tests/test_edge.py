"""The edge models: LiteRT float and int8 beside the SavedModel, their gate, the publication
with the pushed version, the feature module equal to tf.Transform, and the browser page.

The run is the suite's shared first_run (conftest.py): EdgeExport is on by default.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.taxi_sample import PROJECT_DIR, TAXI_TOML, read_examples

LITERT = os.path.join("assets.extra", "litert")


def _published(first_run) -> str:
    workdir = first_run[0]
    base = workdir / "serving" / "taxi_tips"
    versions = sorted(d for d in os.listdir(base) if d.isdigit())
    return str(base / versions[0])


def _first_output(first_run, node: str, key: str) -> str:
    """The first run's output of a node (artifact directories are numbered as they are made)."""
    found = glob.glob(str(first_run[0] / "root" / node / key / "*"))
    return min((d for d in found if os.path.basename(d).isdigit()), key=lambda d: int(os.path.basename(d)))


def test_gate_compares_each_metric_in_its_direction():
    from components.edge_export import _gate

    reference = {"auc": 0.90, "binary_accuracy": 0.80}
    assert _gate("binary", reference, {"auc": 0.896, "binary_accuracy": 0.7}, {})[1] == []  # default: auc 0.005
    limits, failures = _gate("binary", reference, {"auc": 0.894, "binary_accuracy": 0.8}, {})
    assert limits == {"auc": 0.005} and failures == ["auc drop 0.0060 > 0.005"]
    errors = {"mean_absolute_error": 1.0, "root_mean_squared_error": 2.0}
    # Error metrics may not rise: default 1% of the SavedModel's RMSE.
    assert _gate("regression", errors, {"mean_absolute_error": 0.5, "root_mean_squared_error": 2.01}, {})[1] == []
    assert _gate("regression", errors, {"mean_absolute_error": 1.0, "root_mean_squared_error": 2.03}, {})[1]
    assert _gate(
        "regression", errors, {"mean_absolute_error": 1.2, "root_mean_squared_error": 2.0}, {"mean_absolute_error": 0.1}
    )[1] == ["mean_absolute_error drop 0.2000 > 0.1"]


def test_the_switch_removes_the_step_and_a_bad_gate_is_refused():
    from pipeline.config import ConfigError, load_config
    from pipeline.dag import create_pipeline

    ids = lambda cfg: [c.id for c in create_pipeline(cfg).components]  # noqa: E731
    assert "EdgeExport" in ids(load_config(TAXI_TOML, base_dir=PROJECT_DIR))
    assert "EdgeExport" not in ids(load_config(TAXI_TOML, {"edge_export": False}, base_dir=PROJECT_DIR))
    with pytest.raises(ConfigError, match=r"^edge_max_drop\.aucc: "):
        load_config(TAXI_TOML, {"edge_max_drop": {"aucc": 0.01}}, base_dir=PROJECT_DIR)
    with pytest.raises(ConfigError, match=r"^oov_buckets: the edge export needs 1 .* or set edge_export = false"):
        load_config(TAXI_TOML, {"oov_buckets": 3}, base_dir=PROJECT_DIR)
    load_config(TAXI_TOML, {"oov_buckets": 3, "edge_export": False}, base_dir=PROJECT_DIR)


@pytest.mark.e2e
def test_edge_models_are_judged_and_published_with_the_pushed_version(first_run):
    _, _, _, stdout, result = first_run
    report = result.edge_report
    assert report and report["task"] == "binary" and report["eval_examples"] > 500
    base = report["savedmodel"]["metrics"]
    assert abs(base["auc"] - result.overall["auc"]) < 0.02  # our AUC beside TFMA's on the same split
    assert report["feature_max_abs_diff"] < 1e-5
    assert report["float"]["max_abs_diff"] < 1e-4 and report["float"]["published"]
    assert report["int8"]["bytes"] < report["float"]["bytes"]
    assert "float" in report["published"]
    for name in ("float", "int8"):
        assert f"edge {name}" in stdout and "ms/example" in stdout
    version = _published(first_run)
    assert os.path.exists(os.path.join(version, "saved_model.pb"))
    litert = os.path.join(version, LITERT)
    assert sorted(os.listdir(litert)) == sorted(
        ["edge_features.json", "edge_report.json"] + [f"model_{n}.tflite" for n in report["published"]]
    )


@pytest.mark.e2e
def test_the_python_features_equal_the_transform_graph_on_the_eval_split(first_run):
    import tensorflow_transform as tft

    from modeling import edge

    with open(os.path.join(_published(first_run), LITERT, "edge_features.json")) as f:
        spec = json.load(f)
    tto = tft.TFTransformOutput(_first_output(first_run, "Transform", "transform_graph"))
    examples = _first_output(first_run, "ImportExampleGen", "examples")
    evaluation = read_examples(os.path.join(examples, "Split-eval", "*"))
    assert edge.check_features(spec, tto, evaluation) < 1e-5
    # Absent and unseen values too: the first record with every feature removed or unknown.
    assert edge.check_features(spec, tto, [_stripped(evaluation[0], spec)]) < 1e-5


def _stripped(serialized: bytes, spec: dict) -> bytes:
    import tensorflow as tf

    ex = tf.train.Example.FromString(serialized)
    for f in spec["features"]:
        if f["optional"]:
            ex.features.feature[f["name"]].Clear()
        elif f["dtype"] == "string":
            ex.features.feature[f["name"]].bytes_list.value[:] = [b"a value never seen"]
    return ex.SerializeToString()


@pytest.mark.e2e
@pytest.mark.parametrize("variant", ["float", "int8"])
def test_the_browser_page_answers_as_the_saved_model(first_run, variant, tmp_path):
    """LiteRT.js in headless Chromium, offline, scores the eval records as a user types them
    (raw values, absent ones empty): web/edge_features.js gives the Transform graph's
    features, and the answers match the SavedModel's within the tolerance measured in Python."""
    import tensorflow as tf

    from modeling.edge_features import record_of_example

    version = _published(first_run)
    # EdgeExport's own output holds both models, published or not: the browser must agree
    # with what was measured whichever way the gate went on this small, briefly trained model.
    # The first run's output, as the first version: later tests rerun the pipeline.
    exported = _first_output(first_run, "EdgeExport", "edge_model")
    with open(os.path.join(exported, "edge_report.json")) as f:
        report = json.load(f)
    if not os.path.isdir(PROJECT_DIR / "web" / "node_modules"):
        if not shutil.which("npm"):
            pytest.fail("web/node_modules is missing and npm is not installed: run `make web` first")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PROJECT_DIR / "web", check=True)
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, str(PROJECT_DIR / "web" / "build.py"), str(site), "--model", exported], check=True, timeout=120
    )
    with open(site / "model" / "edge_features.json") as f:
        names = [f_["name"] for f_ in json.load(f)["features"]]

    examples = _first_output(first_run, "ImportExampleGen", "examples")
    serialized = read_examples(os.path.join(examples, "Split-eval", "*"))
    records = [record_of_example(tf.train.Example.FromString(s), names) for s in serialized]
    (tmp_path / "cases.json").write_text(json.dumps(records))
    proc = subprocess.run(
        [
            "unshare",
            "-n",
            sys.executable,
            str(PROJECT_DIR / "tests" / "edge_page.py"),
            str(site),
            str(tmp_path / "cases.json"),
            variant,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "error" not in answer, answer
    assert answer["variant"] == variant
    browser = np.array([a["outputs"] for a in answer["answers"]], dtype=np.float64).reshape(len(records), -1)

    import tensorflow_transform as tft

    tto = tft.TFTransformOutput(_first_output(first_run, "Transform", "transform_graph"))
    graph = tto.transform_features_layer()(tf.io.parse_example(tf.constant(serialized), tto.raw_feature_spec()))
    for key in answer["answers"][0]["inputs"]:
        js = np.array([a["inputs"][key] for a in answer["answers"]], dtype=np.float64)
        np.testing.assert_allclose(js, graph[key].numpy().reshape(-1), rtol=0, atol=1e-5, err_msg=key)

    model = tf.saved_model.load(os.path.join(version))
    saved = model.signatures["serving_default"](examples=tf.constant(serialized))["probabilities"].numpy()
    tolerance = report[variant]["max_abs_diff"] + 1e-5  # measured on the whole eval split
    assert np.max(np.abs(browser - saved)) <= tolerance, (np.max(np.abs(browser - saved)), tolerance)
    assert browser.std() > 0


def test_edge_files_land_inside_the_version_whole_and_follow_a_rollback(tmp_path):
    from serving import layout

    def model(name: bytes):
        d = tmp_path / name.decode()
        (d / "variables").mkdir(parents=True)
        (d / "saved_model.pb").write_bytes(b"graph" + name)
        (d / "fingerprint.pb").write_bytes(name)
        return str(d)

    litert = tmp_path / "litert"
    litert.mkdir()
    (litert / "model_int8.tflite").write_bytes(b"TFL3")
    base = str(tmp_path / "serving")
    first, _ = layout.publish(model(b"A"), base, extra={LITERT: str(litert)})
    assert os.listdir(os.path.join(first, LITERT)) == ["model_int8.tflite"]
    assert os.path.exists(os.path.join(first, "saved_model.pb"))
    layout.publish(model(b"B"), base)  # a version without edge models
    _, source, new = layout.rollback(base)
    assert os.listdir(os.path.join(base, str(new), LITERT)) == ["model_int8.tflite"]
    assert layout.latest_version(base) == new and str(source) == os.path.basename(first)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_every_task_converts_float_and_int8_without_select_ops(task, tmp_path):
    """The Keras part of each task's model becomes LiteRT models that TensorFlow's
    interpreter runs with builtin ops only, float within 1e-5 of Keras and int8 close."""
    import tensorflow as tf

    from modeling import edge
    from modeling.network import build_keras_model
    from modeling.roles import Feature, Plan

    plan = Plan(
        task=task,
        label="y",
        label_dtype="int" if task != "regression" else "float",
        classes={"binary": ["0", "1"], "multiclass": ["a", "b", "c"], "regression": []}[task],
        features=[
            Feature("x", "x_xf", "numeric", "float", True),
            Feature("c", "c_xf", "integer_categorical", "int", False),
        ],
    )
    model = build_keras_model(plan, {"c_xf": 6}, hidden_units=(8,), label_mean=3.0, label_std=2.0)
    rng = np.random.default_rng(0)
    n = 300
    inputs = {
        "x_xf": rng.normal(size=(n, 1)).astype(np.float32),
        "x_missing_xf": (rng.random((n, 1)) < 0.2).astype(np.float32),
        "c_xf": rng.integers(0, 6, size=(n, 1)).astype(np.int32),
    }
    keras_out = model({k: tf.cast(v, tf.int64) if v.dtype == np.int32 else v for k, v in inputs.items()}).numpy()
    tf.saved_model.save(model, str(tmp_path / "saved"))
    keras_part = edge.save_edge_model(tf.saved_model.load(str(tmp_path / "saved")), plan, str(tmp_path / "edge"))
    for representative, tolerance in ((None, 1e-5), (inputs, 0.1 * max(1.0, float(np.ptp(keras_out))))):
        content = edge.convert(keras_part, representative)
        ops = {op["op_name"] for op in tf.lite.Interpreter(model_content=content)._get_ops_details()}
        assert not {o for o in ops if o.startswith("Flex") or o == "CUSTOM"}, ops
        out = edge.EdgeRunner(content, plan.output_key)(inputs)
        assert out.shape == keras_out.shape
        assert np.max(np.abs(out - keras_out)) <= tolerance, (task, representative is not None)
