"""The whole DAG, run the way a user runs it, on a small sample with 2 CPU replicas."""

from __future__ import annotations

import os

import pytest
import tensorflow as tf

from tests.taxi_sample import ALL_NODES, PROJECT_DIR, TAXI_TOML, read_examples, run_pipeline

pytestmark = pytest.mark.e2e


def test_every_component_ran(first_run):
    _, _, states, stdout, _ = first_run
    assert states == {node: "done" for node in ALL_NODES}, stdout
    assert "MirroredStrategy: 2 replica(s)" in stdout
    assert "global batch 128" in stdout  # 64 per replica x 2
    # Evaluator and InfraValidator finished (and passed) before the push, and the summary says so.
    lines = stdout.splitlines()
    line = {
        node: next(i for i, l in enumerate(lines) if l.startswith("[") and f"] {node} " in l)
        for node in ("Evaluator", "InfraValidator", "Pusher")
    }
    assert line["Pusher"] > max(line["Evaluator"], line["InfraValidator"]), stdout
    assert "answered TF Serving requests (16 Predict)" in stdout and "model INFRA-BLESSED" in stdout


def test_evaluator_and_infra_validator_ran_at_once(first_run):
    """The local runner starts a node once its inputs are ready (pipeline/concurrent_runner.py):
    the two checks of the Trainer's model overlap in time. ML Metadata creates an execution
    when its driver starts and updates it when it is published, so the first run's two
    executions must each start before the other ended."""
    from pipeline.run_outputs import open_store

    workdir = first_run[0]
    store = open_store(str(workdir / "metadata.sqlite"))
    first = {}
    for node in ("Trainer", "Evaluator", "InfraValidator"):
        context = store.get_context_by_type_and_name("node", f"taxi-tips.{node}")
        first[node] = min(store.get_executions_by_context(context.id), key=lambda e: e.id)
    evaluator, validator = first["Evaluator"], first["InfraValidator"]
    assert evaluator.create_time_since_epoch < validator.last_update_time_since_epoch
    assert validator.create_time_since_epoch < evaluator.last_update_time_since_epoch
    assert min(evaluator.create_time_since_epoch, validator.create_time_since_epoch) >= (
        first["Trainer"].last_update_time_since_epoch
    )


def test_pushed_model_serves_probabilities(first_run):
    workdir, data_dir, _, stdout, _ = first_run
    assert "model BLESSED" in stdout
    versions = os.listdir(workdir / "serving" / "taxi_tips")
    assert len(versions) == 1 and versions[0].isdigit()
    model = tf.saved_model.load(str(workdir / "serving" / "taxi_tips" / versions[0]))
    serialized = read_examples(str(data_dir / "*.tfrecord.gz"), limit=64)
    probs = model.signatures["serving_default"](examples=tf.constant(serialized))["probabilities"].numpy()
    assert probs.shape == (64, 1)
    assert ((probs >= 0) & (probs <= 1)).all()
    assert probs.std() > 0  # the model discriminates, it is not a constant


def test_metrics_exist_for_every_slicing_spec(first_run):
    import tensorflow_model_analysis as tfma

    from pipeline.config import load_config
    from pipeline.evaluation import slicing_specs

    result = first_run[4]
    assert result.blessed is True and result.pushed_to
    assert 0.55 <= result.overall["auc"] <= 1.0
    eval_result = tfma.load_eval_result(result.evaluation_uri)
    slice_columns = {tuple(sorted(k for k, _ in key)) for key, _ in eval_result.slicing_metrics}
    for spec in slicing_specs(load_config(TAXI_TOML, base_dir=PROJECT_DIR)):
        assert tuple(sorted(spec.feature_keys)) in slice_columns, spec


def test_rerun_is_cached_and_a_trainer_change_reruns_only_what_follows(first_run):
    workdir, data_dir, _, _, _ = first_run
    before = sorted(os.listdir(workdir / "serving" / "taxi_tips"))

    # Nothing changed: nothing at all is recomputed. The baseline excludes the candidate,
    # so the first model, now blessed, does not become its own baseline.
    states, stdout = run_pipeline(workdir, data_dir)
    expected = {n: "cached" for n in ALL_NODES}
    expected["BaselineModel"] = "done"  # resolvers always resolve afresh
    assert states == expected, stdout
    assert sorted(os.listdir(workdir / "serving" / "taxi_tips")) == before

    states, stdout = run_pipeline(workdir, data_dir, "learning_rate=0.002")
    for node in ("ImportExampleGen", "StatisticsGen", "Transform"):
        assert states[node] == "cached", stdout
    for node in ("Trainer", "Evaluator", "InfraValidator", "Pusher"):
        assert states[node] == "done", stdout
    assert "(baseline " in stdout  # the new model was judged against the first one
