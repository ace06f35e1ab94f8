"""Each rule of open-source KFP's backend that the compiled spec must pass, shown twice: the
fix lets `run-local` (pipeline/kfp_local.py, the backend's stand-in) through, and with the
fix switched off `run-local` fails where the backend would.

Rules (kubeflow/pipelines backend/src/v2 at 2.17.0, cited in pipeline/kfp_local.py and
pipeline/kfp_entrypoint.py): 1 Argo task names, 2 the pipeline root, 3 `executor-logs`,
4 empty `instance_schema` of input artifacts, 5 KFP's cache key, 6 KFP_NAMESPACE for the
InfraValidator's kubernetes runner, 7 zero-byte directory markers (kubeflow/pipelines#13476).
The task runs use two real TFX tasks on 200 examples (tens of seconds each).
"""

import json
import os
from pathlib import Path

import pytest

import kfp_runner
from pipeline import kfp_entrypoint
from pipeline.kfp_local import TaskFailed, cache_key, download, list_objects, run_compiled, second_run_cache_hits
from pipeline.kubeflow import (
    ENTRYPOINT,
    TFX_ENTRYPOINT,
    SpecError,
    adapt_for_open_source_kfp,
    check_argo_task_names,
    load_job,
)
from tests.taxi_sample import DATA_DIR, read_examples, taxi_config, write_examples

ROOT = Path(__file__).resolve().parent.parent
IN_PROCESS = "--runner=FnApiRunner,--direct_running_mode=in_memory,--direct_num_workers=1"  # small data


@pytest.fixture(scope="module")
def kubeflow_spec(tmp_path_factory):
    out = tmp_path_factory.mktemp("kfp") / "pipeline.json"
    assert kfp_runner.main(["compile", "--config", str(ROOT / "configs" / "kubeflow.toml"), "--output", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def local_spec(tmp_path_factory):
    """The local config's spec with local paths, on 200 examples (what `make kfp-local` runs)."""
    tmp = tmp_path_factory.mktemp("kfp-local")
    write_examples(read_examples(str(DATA_DIR / "*.tfrecord.gz"), limit=200), tmp / "data" / "part-0.tfrecord.gz")
    out = tmp / "pipeline.json"
    assert (
        kfp_runner.main(
            [
                "compile",
                "--config",
                str(taxi_config(tmp)),
                "--output",
                str(out),
                "--set",
                f"image_workdir={ROOT}",
                "--set",
                f"pipeline_root={tmp / 'unused'}",
                "--set",
                f"serving_dir={tmp / 'serving'}",
                "--set",
                f"input_base={tmp / 'data'}",
                "--set",
                f"kubeflow_beam_args={IN_PROCESS}",
            ]
        )
        == 0
    )
    return out


def _edit(spec_path, tmp_path, edit, name="edited.json"):
    data = json.loads(Path(spec_path).read_text())
    edit(data["pipelineSpec"])
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def _only(*tasks):
    def keep(spec):
        spec["root"]["dag"]["tasks"] = {n: t for n, t in spec["root"]["dag"]["tasks"].items() if n in tasks}
        for t in spec["root"]["dag"]["tasks"].values():
            t["dependentTasks"] = [d for d in t.get("dependentTasks", []) if d in tasks]

    return keep


def _command(task_label, command):
    def change(spec):
        spec["deploymentSpec"]["executors"][task_label]["container"]["command"] = list(command)

    return change


def _all_commands(command):
    def change(spec):
        for executor in spec["deploymentSpec"]["executors"].values():
            executor["container"]["command"] = list(command)

    return change


def _chain(*edits):
    def apply(spec):
        for e in edits:
            e(spec)

    return apply


# 1. Argo task names ------------------------------------------------------------------------


def test_1_argo_refuses_underscores_so_run_local_and_compile_do(kubeflow_spec, tmp_path):
    def old_name(spec):  # the name the baseline task had before the fix
        tasks = spec["root"]["dag"]["tasks"]
        tasks["latest_pushed_model"] = tasks.pop("BaselineModel")
        tasks["Evaluator"]["dependentTasks"] = [
            "latest_pushed_model" if d == "BaselineModel" else d for d in tasks["Evaluator"]["dependentTasks"]
        ]
        tasks["Evaluator"]["inputs"]["artifacts"]["baseline_model"]["taskOutputArtifact"]["producerTask"] = (
            "latest_pushed_model"
        )

    with pytest.raises(SpecError, match="Argo refuses the DAG task 'latest_pushed_model'"):
        run_compiled(_edit(kubeflow_spec, tmp_path, old_name), pipeline_root=str(tmp_path / "root"), local_storage=True)
    assert not (tmp_path / "root").exists()
    with pytest.raises(SpecError, match="Argo refuses"):
        adapt_for_open_source_kfp(
            json.loads(Path(_edit(kubeflow_spec, tmp_path, old_name)).read_text())["pipelineSpec"]
        )
    check_argo_task_names(["A" * 121])  # 128 with "-driver"
    with pytest.raises(SpecError, match="at most 128"):
        check_argo_task_names(["A" * 122])


# 2. The pipeline root ----------------------------------------------------------------------


def test_2_run_local_refuses_a_root_the_launcher_refuses_unless_asked_for_a_local_proof(local_spec, tmp_path):
    with pytest.raises(SpecError, match="KFP's launcher accepts only a bucket URI"):
        run_compiled(str(local_spec), pipeline_root=str(tmp_path / "root"))
    with pytest.raises(SpecError, match="local storage only"):
        run_compiled(str(local_spec), pipeline_root="gs://bucket/root")
    assert not (tmp_path / "root").exists()


# 3, 4, 7: what the driver and launcher hand TFX's entrypoint ------------------------------


@pytest.mark.e2e
def test_3_executor_logs_output_stops_tfx_entrypoint_and_the_entrypoint_layer_drops_it(local_spec, tmp_path):
    spec = _edit(local_spec, tmp_path, _chain(_only("ImportSchemaGen"), _all_commands(TFX_ENTRYPOINT)))
    with pytest.raises(TaskFailed) as failed:
        run_compiled(spec, pipeline_root=str(tmp_path / "off"), local_storage=True)
    assert "No module named 'system'" in Path(failed.value.log_path).read_text()  # "system.Artifact" as a class path
    fixed = _edit(local_spec, tmp_path, _only("ImportSchemaGen"), "fixed.json")
    run = run_compiled(fixed, pipeline_root=str(tmp_path / "on"), local_storage=True)
    assert run.states == {"ImportSchemaGen": "done"}
    assert os.path.isfile(os.path.join(run.artifact("ImportSchemaGen", "schema").uri, "schema.pbtxt"))


@pytest.mark.e2e
def test_4_empty_instance_schema_of_an_input_crashes_tfx_entrypoint(local_spec, tmp_path):
    # ImportExampleGen through the layer; StatisticsGen straight into TFX's entrypoint.
    spec = _edit(
        local_spec,
        tmp_path,
        _chain(_only("ImportExampleGen", "StatisticsGen"), _command("StatisticsGen_executor", TFX_ENTRYPOINT)),
    )
    with pytest.raises(TaskFailed) as failed:
        run_compiled(spec, pipeline_root=str(tmp_path / "off"), local_storage=True, publish_logs=False)
    assert failed.value.task == "StatisticsGen"
    assert "AttributeError: 'NoneType' object has no attribute 'get'" in Path(failed.value.log_path).read_text()


@pytest.mark.e2e
def test_7_directory_markers_break_the_launchers_download_unless_the_layer_removes_them(local_spec, tmp_path):
    # Both tasks straight into TFX's entrypoint (and no executor-logs, which would stop it first):
    # ImportExampleGen's output, written as TensorFlow writes to GCS, cannot be downloaded.
    spec = _edit(
        local_spec, tmp_path, _chain(_only("ImportExampleGen", "StatisticsGen"), _all_commands(TFX_ENTRYPOINT))
    )
    with pytest.raises(TaskFailed, match="directory marker") as failed:
        run_compiled(spec, pipeline_root=str(tmp_path / "off"), local_storage=True, publish_logs=False)
    assert failed.value.task == "StatisticsGen"


@pytest.mark.e2e
def test_3_4_5_7_with_the_fixes_two_runs_read_the_input_twice(local_spec, tmp_path):
    spec = _edit(local_spec, tmp_path, _only("ImportExampleGen", "StatisticsGen", "ImportSchemaGen"))
    first = run_compiled(spec, pipeline_root=str(tmp_path / "root"), local_storage=True)
    second = run_compiled(spec, pipeline_root=str(tmp_path / "root"), local_storage=True)
    assert first.states == {"ImportExampleGen": "done", "ImportSchemaGen": "done", "StatisticsGen": "done"}
    assert second.states == {"ImportExampleGen": "done", "ImportSchemaGen": "cached", "StatisticsGen": "done"}
    assert first.artifact("ImportSchemaGen", "schema").name == second.artifact("ImportSchemaGen", "schema").name
    assert first.artifact("ImportExampleGen", "examples").name != second.artifact("ImportExampleGen", "examples").name
    # TFX's ExampleGen driver ran in the layer: the input's span and fingerprint are recorded.
    examples = second.artifact("ImportExampleGen", "examples").metadata
    assert examples["custom:span"] == 0  # TFX's entrypoint's key for a custom property named like a property
    assert examples["input_fingerprint"].startswith("split:single_split,num_files:1,")


# 5. KFP's cache key ------------------------------------------------------------------------


def test_5_with_cache_on_everywhere_a_second_scheduled_run_would_do_nothing(kubeflow_spec):
    _, spec = load_job(str(kubeflow_spec))
    assert second_run_cache_hits(spec) == ["ImportSchemaGen"]
    for task in spec.root.dag.tasks.values():  # the fix switched off: TFX compiles every task cached
        task.caching_options.enable_cache = True
    assert sorted(second_run_cache_hits(spec)) == sorted(spec.root.dag.tasks)


def test_5_cache_key_is_kfps_inputs_parameters_command_and_image():
    from kfp.pipeline_spec import pipeline_spec_pb2 as ps

    container = ps.PipelineDeploymentConfig.PipelineContainerSpec(image="img:1", command=ENTRYPOINT, args=["{{$}}"])
    ex = ps.ExecutorInput()
    ex.inputs.parameter_values["input_base"].string_value = "gs://b/data"
    ex.inputs.artifacts["examples"].artifacts.add(name="7", uri="gs://b/run-1/examples")
    ex.outputs.artifacts["statistics"].artifacts.add(name="statistics", uri="gs://b/run-1/statistics")
    key = cache_key(ex, container)
    ex.outputs.artifacts["statistics"].artifacts[0].uri = "gs://b/run-2/statistics"  # output URIs are wiped
    assert cache_key(ex, container) == key
    ex.inputs.artifacts["examples"].artifacts[0].uri = "gs://b/run-2/examples"  # so are input URIs: ids count
    assert cache_key(ex, container) == key
    ex.inputs.artifacts["examples"].artifacts[0].name = "8"
    assert cache_key(ex, container) != key


# 6. KFP_NAMESPACE --------------------------------------------------------------------------


def test_6_kubernetes_infra_validation_needs_kfp_namespace_which_only_the_layer_provides(kubeflow_spec, tmp_path):
    off = _edit(kubeflow_spec, tmp_path, _command("InfraValidator_executor", TFX_ENTRYPOINT))
    with pytest.raises(SpecError, match="needs KFP_NAMESPACE"):
        run_compiled(off, pipeline_root=str(tmp_path / "r"), local_storage=True)
    with pytest.raises(SpecError, match="needs a cluster"):  # fixed, but no pod to start here
        run_compiled(str(kubeflow_spec), pipeline_root=str(tmp_path / "r"), local_storage=True)

    namespace = tmp_path / "namespace"
    namespace.write_text("team-a\n")
    env = kfp_entrypoint.kfp_environment({"KFP_POD_NAME": "p", "KFP_POD_UID": "u"}, str(namespace))
    assert env["KFP_NAMESPACE"] == "team-a"
    assert "KFP_NAMESPACE" not in kfp_entrypoint.kfp_environment({}, str(namespace))  # not in a KFP pod


def test_6_infra_validator_fails_the_task_instead_of_blessing_nothing_when_it_cannot_run(monkeypatch):
    from tfx.utils import proto_utils

    from components import infra_validator
    from pipeline import infra_validation
    from pipeline.config import load_config

    cfg = load_config(ROOT / "configs" / "kubeflow.toml", base_dir=ROOT)
    props = {"serving_spec": proto_utils.proto_to_json(infra_validation.serving_spec(cfg))}
    monkeypatch.setenv("KFP_POD_NAME", "pod")
    monkeypatch.delenv("KFP_NAMESPACE", raising=False)
    with pytest.raises(RuntimeError, match="missing here: KFP_NAMESPACE"):
        infra_validator.check_platform(props)
    local = load_config(ROOT / "configs" / "kubeflow.toml", {"infra_validator_runner": "local"}, base_dir=ROOT)
    infra_validator.check_platform({"serving_spec": proto_utils.proto_to_json(infra_validation.serving_spec(local))})


# 7. Directory markers, the two halves ------------------------------------------------------


def test_7_launcher_download_of_a_marker_fails_as_in_13476(tmp_path):
    model = tmp_path / "bucket" / "Trainer" / "model"
    (model / "Format-Serving" / "variables").mkdir(parents=True)
    (model / "Format-Serving" / "saved_model.pb").write_bytes(b"pb")
    (model / "Format-Serving" / "variables" / "variables.index").write_bytes(b"ix")
    (model / "Format-Serving" / "assets").mkdir()
    keys = [k for k, _ in list_objects(str(model), "all")]
    assert keys[0] == f"{model}/" and f"{model}/Format-Serving/assets/" in keys
    with pytest.raises(RuntimeError, match="directory marker"):
        download(str(model), str(tmp_path / "pod-a"), "all")
    download(str(model), str(tmp_path / "pod-b"), "empty")  # markers only for empty directories
    assert (tmp_path / "pod-b" / "Format-Serving" / "variables" / "variables.index").read_bytes() == b"ix"


class GcsLikeStore:
    """Objects by key, as in a bucket, and TF's GCS filesystem's view of them: a directory
    exists if a marker "d/" or any object below it does; `remove` deletes one object."""

    def __init__(self, keys):
        self.objects = set(keys)

    def isdir(self, path):
        prefix = path.rstrip("/") + "/"
        return any(k.startswith(prefix) for k in self.objects)

    def walk(self, top):
        prefix = top.rstrip("/") + "/"
        below = [k[len(prefix) :] for k in self.objects if k.startswith(prefix) and k != prefix]
        subdirs = sorted({b.split("/")[0] for b in below if "/" in b})
        files = sorted(b for b in below if "/" not in b)
        yield top.rstrip("/"), subdirs, files
        for d in subdirs:
            yield from self.walk(prefix + d)

    def remove(self, path):
        if path not in self.objects:
            raise FileNotFoundError(path)
        self.objects.remove(path)


def test_7_the_layer_deletes_the_markers_of_non_empty_directories_only():
    store = GcsLikeStore(
        [
            "gs://b/m/",
            "gs://b/m/Format-Serving/",
            "gs://b/m/Format-Serving/saved_model.pb",
            "gs://b/m/Format-Serving/assets/",
            "gs://b/m/Format-Serving/variables/v.index",
        ]
    )
    assert kfp_entrypoint.remove_directory_markers("gs://b/m", fs=store) == 2
    assert store.objects == {
        "gs://b/m/Format-Serving/saved_model.pb",
        "gs://b/m/Format-Serving/assets/",
        "gs://b/m/Format-Serving/variables/v.index",
    }
    assert kfp_entrypoint.remove_directory_markers("/local/path", fs=store) == 0


def test_3_4_the_layer_gives_tfx_the_input_types_and_hides_executor_logs():
    executor_input = {
        "inputs": {
            "artifacts": {
                "examples": {
                    "artifacts": [
                        {"name": "12", "uri": "gs://b/e", "type": {"instanceSchema": ""}, "metadata": {"span": 0.0}}
                    ]
                }
            }
        },
        "outputs": {
            "artifacts": {
                "statistics": {
                    "artifacts": [
                        {
                            "name": "statistics",
                            "uri": "gs://b/s",
                            "type": {"instanceSchema": "title: tfx.ExampleStatistics\n"},
                        }
                    ]
                },
                "executor-logs": {
                    "artifacts": [
                        {"name": "executor-logs", "uri": "gs://b/l", "type": {"schemaTitle": "system.Artifact"}}
                    ]
                },
            }
        },
    }
    spec = {"artifacts": {"examples": {"artifactType": {"instanceSchema": "title: tfx.Examples\ntype: object\n"}}}}
    adapted = kfp_entrypoint.adapt_executor_input(executor_input, spec)
    assert (
        adapted["inputs"]["artifacts"]["examples"]["artifacts"][0]["type"]
        == spec["artifacts"]["examples"]["artifactType"]
    )
    assert list(adapted["outputs"]["artifacts"]) == ["statistics"]
    assert "executor-logs" in executor_input["outputs"]["artifacts"]  # the caller's copy is untouched
