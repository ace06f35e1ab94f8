"""Three days of continuous training on small daily spans, run by `python -m pipeline.days`
as a user runs it: a clean first day (cold start, pushed), a clean second day (two-span
window, warm-started from the first day's model, pushed) and a drifted third day (stopped
by DriftCheck naming the features, nothing pushed). One session of runs; several checks."""

from __future__ import annotations

import glob
import json
import re
import subprocess
import sys

import pytest

from tests.taxi_sample import PROJECT_DIR

pytestmark = pytest.mark.e2e

COLD_STEPS, WARM_STEPS = 150, 50
LINE = re.compile(r"^(\d{4}-\d\d-\d\d)  span (\d+)  rows +(\d+)  (.*)$", re.M)


@pytest.fixture(scope="module")
def three_days(tmp_path_factory):
    out = tmp_path_factory.mktemp("days")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.days",
            "--days",
            "3",
            "--rows",
            "1000",
            "--out",
            str(out),
            "--set",
            f"train_steps={COLD_STEPS}",
            "--set",
            f"warm_start_steps={WARM_STEPS}",
            "--set",
            "eval_steps=10",
            "--set",
            "thresholds={auc = {min = 0.55}}",
            "--set",
            "max_drop={auc = 0.2}",
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=1800,
    )
    lines = {m.group(1): m for m in LINE.finditer(proc.stdout)}
    return out, proc, lines


def test_each_day_reads_the_newest_span_and_says_what_happened(three_days):
    out, proc, lines = three_days
    assert proc.returncode == 0, proc.stdout + proc.stderr  # only the drifted day stopped
    assert list(lines) == ["2026-11-01", "2026-11-02", "2026-11-03"], proc.stdout
    # TFX's date spans: days since 1970-01-01; each run picked the span written that day.
    assert [int(m.group(2)) for m in lines.values()] == [20758, 20759, 20760]
    assert all(m.group(3) == "1000" for m in lines.values())
    day1, day2, day3 = (m.group(4) for m in lines.values())
    assert "window 20758 " in day1 and f"cold start ({COLD_STEPS} steps)" in day1 and "-> pushed" in day1, day1
    assert "no previous span" in day1
    assert "window 20758+20759 " in day2 and f"warm start ({WARM_STEPS} steps)" in day2, day2
    assert "no drift" in day2 and day2.endswith("-> pushed"), day2


def test_the_drifted_span_is_stopped_with_its_features_named(three_days):
    out, proc, lines = three_days
    day3 = lines["2026-11-03"].group(4)
    assert day3.startswith("DRIFT: span 20760 drifted from span 20759: "), day3
    assert "payment_type (L-infinity distance" in day3 and "trip_start_hour (Jensen-Shannon divergence" in day3
    assert day3.endswith("-> not pushed")
    # Clean features stay below their thresholds: the gate names only what moved.
    assert "company" not in day3 and "fare" not in day3
    assert len(glob.glob(str(out / "serving" / "taxi_tips" / "*"))) == 2  # days 1 and 2 only


def _trainer_inputs(metadata_path: str):
    """The latest Trainer execution's input artifacts (as TFX artifacts), exec properties and
    model output, from ML Metadata."""
    from ml_metadata.proto import metadata_store_pb2
    from tfx.types import artifact_utils

    from pipeline.run_outputs import latest_execution, open_store, outputs_of

    store = open_store(metadata_path)
    execution = latest_execution(store, "taxi-tips", "Trainer")
    events = [e for e in store.get_events_by_execution_ids([execution.id]) if e.type == metadata_store_pb2.Event.INPUT]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    types = {t.id: t for t in store.get_artifact_types_by_id([a.type_id for a in artifacts.values()])}
    inputs = {}
    for e in events:
        a = artifacts[e.artifact_id]
        inputs.setdefault(e.path.steps[0].key, []).append(artifact_utils.deserialize_artifact(types[a.type_id], a))
    props = {k: v.string_value or v.int_value for k, v in execution.custom_properties.items()}
    return inputs, props, outputs_of(store, execution)["model"][0].uri


def _auc(serving_model_dir: str, examples_uri: str) -> float:
    """AUC of an exported model on an Examples artifact's eval split, through its serving
    signature (the transform graph inside it) as a client would call it."""
    import tensorflow as tf

    from modeling.roles import LABEL_KEY

    model = tf.saved_model.load(serving_model_dir)
    files = glob.glob(f"{examples_uri}/Split-eval/*")
    (serialized,) = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1_000_000).take(1)
    labels = model.signatures["transform_features"](examples=serialized)[LABEL_KEY]
    auc = tf.keras.metrics.AUC(num_thresholds=10_000)
    auc.update_state(
        tf.reshape(labels, [-1]),
        tf.reshape(model.signatures["serving_default"](examples=serialized)["probabilities"], [-1]),
    )
    return float(auc.result())


def test_warm_start_reaches_the_cold_start_auc_in_fewer_steps(three_days, tmp_path):
    """Day 2's model (day 1's weights + WARM_STEPS steps) against a cold start on the same day:
    TFX's Trainer executor run again on day 2's very inputs (the same examples, transform graph
    and settings) with warm start off and COLD_STEPS steps, both judged on day 2's eval split."""
    from tfx.components.trainer.executor import GenericExecutor
    from tfx.types import standard_artifacts

    from pipeline.run_outputs import read_run_result

    out, _, _ = three_days
    assert read_run_result(str(out / "metadata.sqlite"), "taxi-tips").warm_start["steps"] == WARM_STEPS
    inputs, props, warm_model = _trainer_inputs(str(out / "metadata.sqlite"))
    assert inputs.pop("base_model")  # day 2 did warm-start
    custom = json.loads(props["custom_config"])
    props["custom_config"] = json.dumps({**custom, "warm_start": False})
    props["train_args"] = json.dumps({"num_steps": COLD_STEPS})
    cold, cold_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
    cold.uri, cold_run.uri = str(tmp_path / "model"), str(tmp_path / "model_run")
    GenericExecutor().Do(inputs, {"model": [cold], "model_run": [cold_run]}, props)
    assert json.loads((tmp_path / "model_run" / "warm_start.json").read_text())["steps"] == COLD_STEPS

    examples = inputs["examples"][0].uri
    warm_auc = _auc(f"{warm_model}/Format-Serving", examples)
    cold_auc = _auc(str(tmp_path / "model" / "Format-Serving"), examples)
    print(f"day 2: warm start ({WARM_STEPS} steps) AUC {warm_auc:.4f}, cold start ({COLD_STEPS} steps) {cold_auc:.4f}")
    assert warm_auc >= cold_auc - 0.005, (warm_auc, cold_auc)


def test_the_warm_start_names_its_model_and_the_report_shows_it(three_days):
    from pipeline.run_outputs import read_run_result

    out, _, _ = three_days
    result = read_run_result(str(out / "metadata.sqlite"), "taxi-tips")  # Trainer on: day 2 (day 3 stopped before)
    assert result.warm_start["warm_started"] is True
    source = result.warm_start["detail"].removeprefix("from ").split(";")[0]
    assert re.fullmatch(rf"{out}/root/Trainer/model/\d+/Format-Serving", source), result.warm_start
    assert glob.glob(f"{source}/assets.extra/warm_start/weights.h5")
    # ExampleGen's latest run is day 3's (stopped later, by DriftCheck): a window of three spans.
    assert result.span == 20760 and result.window == {"20758": 1000, "20759": 1000, "20760": 1000}
    report = open(f"{result.report_dir}/report.md").read()
    assert f"warm start: from {source}" in report and "span 20759, compared with span 20758" in report
    assert re.search(r"drift ok: trip_start_hour: Jensen-Shannon divergence \d\.\d{4} \(threshold 0\.05\)", report)
    for feature in ("payment_type", "company"):
        assert re.search(rf"drift ok: {feature}: L-infinity distance \d\.\d{{4}} \(threshold 0\.1\)", report)


def test_every_span_keeps_its_statistics(three_days):
    import tensorflow_data_validation as tfdv

    out, _, _ = three_days
    kept = sorted(
        glob.glob(str(out / "root" / "StatisticsGen" / "statistics" / "*" / "Split-span" / "FeatureStats.pb"))
    )
    assert len(kept) == 3  # one per day, the drifted one included
    counts = [tfdv.load_stats_binary(p).datasets[0].num_examples for p in kept]
    assert counts == [1000, 1000, 1000]


def test_on_kubeflow_the_span_is_resolved_when_the_task_runs(tmp_path):
    """The compiled spec run task by task as open-source KFP's backend would (kfp_runner.py
    run-local): ExampleGen (uncached) reads the newest span present when it runs, with the
    window, and DriftCheck compares it with the one before; warm start reads the serving
    directory (no resolver task)."""

    import kfp_runner
    from pipeline.kfp_local import run_compiled
    from pipeline.kubeflow import load_job, typed_parameters
    from tests.taxi_sample import DATA_DIR, read_examples, taxi_config, write_examples

    records = read_examples(str(DATA_DIR / "*.tfrecord.gz"), limit=300)
    for day, part in (("2026-11-01", records[:100]), ("2026-11-02", records[100:200])):
        write_examples(part, tmp_path / "data" / day / "part-0.tfrecord.gz")
    spec_path = tmp_path / "pipeline.json"
    assert (
        kfp_runner.main(
            [
                "compile",
                "--config",
                str(taxi_config(tmp_path)),
                "--output",
                str(spec_path),
                "--set",
                f"image_workdir={PROJECT_DIR}",
                "--set",
                f"pipeline_root={tmp_path / 'unused'}",
                "--set",
                f"serving_dir={tmp_path / 'serving'}",
                "--set",
                f"input_base={tmp_path / 'data'}",
                "--set",
                "input_pattern={YYYY}-{MM}-{DD}/*.tfrecord.gz",
                "--set",
                "window_spans=2",
                "--set",
                "warm_start=true",
                "--set",
                "drift_l_infinity=0.5",
                "--set",
                "kubeflow_beam_args=--runner=FnApiRunner,--direct_running_mode=in_memory,--direct_num_workers=1",
            ]
        )
        == 0
    )
    _, spec = load_job(str(spec_path))
    tasks = spec.root.dag.tasks
    assert "WarmStartModel" in tasks["Trainer"].dependent_tasks and "DriftCheck" in tasks["Transform"].dependent_tasks
    for name in ("ImportExampleGen", "WarmStartModel"):
        assert tasks[name].caching_options.enable_cache is False, name
    assert spec.root.input_definitions.parameters["span"].default_value.number_value == -1

    data = json.loads(spec_path.read_text())
    keep = ("ImportExampleGen", "ImportSchemaGen", "StatisticsGen", "DriftCheck")
    data["pipelineSpec"]["root"]["dag"]["tasks"] = {
        n: t for n, t in data["pipelineSpec"]["root"]["dag"]["tasks"].items() if n in keep
    }
    for t in data["pipelineSpec"]["root"]["dag"]["tasks"].values():
        t["dependentTasks"] = [d for d in t.get("dependentTasks", []) if d in keep]
    (tmp_path / "part.json").write_text(json.dumps(data))
    run = run_compiled(str(tmp_path / "part.json"), pipeline_root=str(tmp_path / "root"), local_storage=True)
    assert set(run.states.values()) == {"done"}, run.states
    examples = run.artifact("ImportExampleGen", "examples").metadata
    # TFX's ExampleGen driver, run by the task's entrypoint, resolved the newest span present
    # (TFX's entrypoint names the custom property of the same name as a property "custom:span").
    assert examples["custom:span"] == 20759
    assert json.loads(examples["window_spans"]) == {"20758": 100, "20759": 100}
    drift = run.artifact("DriftCheck", "drift").metadata
    assert drift["new_span"] == 20759 and drift["previous_span"] == 20758
    assert {d["feature"] for d in json.loads(drift["drift"])} >= {"payment_type", "company"}

    # A run started with the parameter span=20758 (as `kfp_runner.py run-local --param
    # span=20758` types it) reads that older span, not the newest: TFX's driver got it as a
    # RangeConfig. The window ends there.
    spec_only_example_gen = json.loads((tmp_path / "part.json").read_text())
    spec_only_example_gen["pipelineSpec"]["root"]["dag"]["tasks"] = {
        "ImportExampleGen": spec_only_example_gen["pipelineSpec"]["root"]["dag"]["tasks"]["ImportExampleGen"]
    }
    (tmp_path / "example_gen.json").write_text(json.dumps(spec_only_example_gen))
    params = typed_parameters(str(tmp_path / "example_gen.json"), {"span": "20758"})
    older = run_compiled(
        str(tmp_path / "example_gen.json"), params, pipeline_root=str(tmp_path / "root"), local_storage=True
    )
    examples = older.artifact("ImportExampleGen", "examples").metadata
    assert examples["custom:span"] == 20758 and json.loads(examples["window_spans"]) == {"20758": 100}
