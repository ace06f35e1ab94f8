"""Data sets that are not the taxi data, run the way the README tells a data scientist:
infer a schema with the documented command, then `make run` with three settings.

One per task: binary with string labels, multiclass with four classes, regression. Each
must reach a pushed model whose signatures answer label-less examples with outputs of
the task's shape, and a report.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from pipeline.run_outputs import read_run_result
from tests import synthetic
from tests.taxi_sample import PROJECT_DIR

pytestmark = pytest.mark.e2e

CASES = {
    # name: (rows, label, task, metric the model must reach, bound)
    "loans": (synthetic.loans, "Decision", "binary", "auc", 0.75),
    "species": (synthetic.species, "class id", "multiclass", "accuracy", 0.6),
    "prices": (synthetic.prices, "sale price", "regression", "r2", 0.5),
}


def run(*args, timeout=900):
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=PROJECT_DIR, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module", params=sorted(CASES))
def own_run(request, tmp_path_factory):
    name = request.param
    make_rows, label, task, _, _ = CASES[name]
    work = tmp_path_factory.mktemp(name)
    rows = make_rows()
    synthetic.write_tfrecords(rows, work / "data")
    schema = work / "schema.pbtxt"
    run("-m", "pipeline.infer_schema", "--input-base", str(work / "data"), "--label", label, "--output", str(schema))
    out = run(
        "local_runner.py",
        "--config",
        "configs/local.toml",
        "--set",
        f"input_base={work / 'data'}",
        "--set",
        f"schema_path={schema}",
        "--set",
        f"label={label}",
        "--set",
        f"pipeline_root={work}/root",
        "--set",
        f"metadata_path={work}/metadata.sqlite",
        "--set",
        f"serving_dir={work}/serving",
        "--set",
        "train_steps=300",
        "--set",
        "eval_steps=10",
    )
    return name, work, rows, out


def label_less(rows, label, n=16) -> list[bytes]:
    return [
        tf.train.Example(
            features=tf.train.Features(
                feature={
                    k: f for k, f in ((k, synthetic._feature(v)) for k, v in r.items() if k != label) if f is not None
                }
            )
        ).SerializeToString()
        for r in rows[:n]
    ]


def test_runs_to_a_pushed_model_with_the_task_decided_from_the_schema(own_run):
    name, work, rows, out = own_run
    _, label, task, metric, bound = CASES[name]
    assert f"task: {task}, because label '{label}'" in out, out
    if task == "binary":
        assert "positive class: 'deny' (set positive_class to choose the other)" in out
    assert "[dataset] settings of local.toml" in out and "are not applied" in out  # the taxi's
    assert "pushed to " in out and "report: " in out, out
    result = read_run_result(str(work / "metadata.sqlite"), "tabular")
    assert result.pushed_to and result.report_dir
    assert os.path.exists(os.path.join(result.report_dir, "report.html"))
    assert result.overall[metric] >= bound, (metric, result.overall)


def test_pushed_signatures_answer_label_less_examples(own_run):
    name, work, rows, _ = own_run
    _, label, task, _, _ = CASES[name]
    base = work / "serving" / "model"
    (version,) = os.listdir(base)
    model = tf.saved_model.load(str(base / version))
    examples = tf.constant(label_less(rows, label))
    out = model.signatures["serving_default"](examples=examples)
    if task == "regression":
        predictions = out["predictions"].numpy()
        assert predictions.shape == (16, 1) and predictions.std() > 0
        regressed = model.signatures["regression"](inputs=examples)["outputs"].numpy()
        np.testing.assert_allclose(regressed.reshape(-1), predictions.reshape(-1), rtol=1e-5)
        truth = np.array([r[label] for r in rows[:16]])
        assert np.abs(predictions.reshape(-1) - truth).mean() < truth.std()  # better than a constant
        return
    probabilities = out["probabilities"].numpy()
    classified = model.signatures["classification"](inputs=examples)
    if task == "binary":
        assert probabilities.shape == (16, 1)
        # No word says which is positive: the later in sorted order, as the run said.
        assert classified["classes"].numpy()[0].tolist() == [b"approve", b"deny"]
    else:
        assert probabilities.shape == (16, 4)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        assert out["classes"].numpy()[0].tolist() == [b"0", b"1", b"2", b"3"]
        predicted = probabilities.argmax(axis=1)
        truth = np.array([r[label] for r in rows[:16]])
        assert (predicted == truth).mean() > 0.5
    assert classified["scores"].numpy().shape[1] == len(classified["classes"].numpy()[0])
