"""The compiled Kubeflow spec: valid for KFP, the same DAG as the local run, runnable.

`tests/golden/pipeline.json` is the spec of configs/kubeflow.toml as committed; when code
or settings change it, `test_spec_matches_golden` prints the diff for review and
`make golden` accepts it.
"""

import difflib
import json
import os
import shutil
from pathlib import Path

import pytest

import kfp_runner
from pipeline.config import load_config
from pipeline.kfp_local import LocalRun, _deployment, check_runnable, execution_order, pipeline_parameters, run_compiled
from pipeline.kubeflow import ENTRYPOINT, SpecError, load_job, task_dependencies, typed_parameters
from tests.taxi_sample import taxi_config

ROOT = Path(__file__).resolve().parent.parent
IN_PROCESS = "--runner=FnApiRunner,--direct_running_mode=in_memory,--direct_num_workers=1"  # small data
GOLDEN = ROOT / "tests" / "golden" / "pipeline.json"
CONFIG = ROOT / "configs" / "kubeflow.toml"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("kfp") / "pipeline.json"
    assert kfp_runner.main(["compile", "--config", str(CONFIG), "--output", str(out)]) == 0
    return out


def test_spec_parses_strictly_with_kfp_protos(compiled):
    job, spec = load_job(str(compiled))
    assert spec.schema_version == "2.1.0"
    deployment = _deployment(spec)
    check_runnable(spec, deployment)  # container executors only: no resolver/importer tasks
    assert len(execution_order(spec)) == len(spec.root.dag.tasks) == 13


def test_every_local_node_is_a_task_with_the_same_dependencies(compiled):
    from pipeline.dag import create_pipeline

    local = create_pipeline(load_config(CONFIG, base_dir=ROOT))
    expected = {n.id: {u.id for u in n.upstream_nodes} for n in local.components}
    # Locally the resolver reads the candidate (to exclude it from the baselines); the
    # serving directory's latest version needs no candidate.
    expected["BaselineModel"].discard("Trainer")
    _, spec = load_job(str(compiled))
    assert task_dependencies(spec) == expected


def test_every_executor_runs_the_pipeline_image_through_the_compatibility_entrypoint(compiled):
    cfg = load_config(CONFIG, base_dir=ROOT)
    _, spec = load_job(str(compiled))
    executors = _deployment(spec).executors
    assert len(executors) == 13
    for label, executor in executors.items():
        assert executor.container.image == cfg.image, label
        assert list(executor.container.command) == ENTRYPOINT == ["python", "-m", "pipeline.kfp_entrypoint"]
        assert "{{$}}" in executor.container.args
        assert "--direct_running_mode=multi_processing" in executor.container.args


def test_module_paths_named_in_the_spec_import(compiled):
    from tfx.orchestration.kubeflow.v2 import compiler_utils
    from tfx.utils import import_utils

    _, spec = load_job(str(compiled))
    paths = set()
    for executor in _deployment(spec).executors.values():
        args = list(executor.container.args)
        paths.add(args[args.index("--executor_class_path") + 1])
    for task in spec.root.dag.tasks.values():
        for name in ("run_fn", "preprocessing_fn"):
            if name in task.inputs.parameters:
                paths.add(task.inputs.parameters[name].runtime_value.constant.string_value)
    for component in spec.components.values():
        for output in component.output_definitions.artifacts.values():
            title = output.artifact_type.instance_schema.split("\n")[0].removeprefix("title: ")
            paths.add(compiler_utils.TITLE_TO_CLASS_PATH.get(title, title))
    assert "components.serving_pusher.Executor" in paths
    assert "components.SliceReportFiles" in paths
    for path in sorted(paths):  # as the entrypoint imports them (import_func_from_module would reload)
        assert import_utils.import_class_by_path(path), path


def test_infra_validator_is_a_container_task_gating_the_push_with_kubernetes_serving(compiled):
    """TFX's v2 compiler refuses `tfx.components.InfraValidator` by type; ours compiles."""
    _, spec = load_job(str(compiled))
    args = list(_deployment(spec).executors["InfraValidator_executor"].container.args)
    assert args[args.index("--executor_class_path") + 1] == "components.infra_validator.Executor"
    pusher = spec.root.dag.tasks["Pusher"].inputs.artifacts["infra_blessing"].task_output_artifact
    assert (pusher.producer_task, pusher.output_artifact_key) == ("InfraValidator", "blessing")
    serving = json.loads(
        spec.root.dag.tasks["InfraValidator"].inputs.parameters["serving_spec"].runtime_value.constant.string_value
    )
    assert "kubernetes" in serving and serving["tensorflow_serving"]["image_name"] == "tensorflow/serving"


def test_run_parameters_have_the_config_defaults_and_trainer_its_resources(compiled):
    _, spec = load_job(str(compiled))
    params = spec.root.input_definitions.parameters
    assert params["train_args"].default_value.string_value == '{"num_steps": 1000}'
    assert params["input_base"].default_value.string_value == "/pipeline/data/taxi"
    assert "span" not in params  # configs/kubeflow.toml's pattern names no spans
    trainer = _deployment(spec).executors["Trainer_executor"].container.resources
    assert (trainer.resource_cpu_limit, trainer.resource_memory_limit) == ("4", "8G")
    schema = spec.root.dag.tasks["ImportSchemaGen"].inputs.parameters["schema_file"]
    assert schema.runtime_value.constant.string_value == "/pipeline/schemas/taxi_schema.pbtxt"


def test_span_is_a_typed_run_parameter_that_example_gen_receives(tmp_path):
    """With a span pattern, `span` is a NUMBER_INTEGER run parameter (default: the config's,
    -1 the newest) declared by the root and by ExampleGen's component and passed to its task,
    as KFP's SDK compiles a pipeline parameter; no RangeConfig is compiled in. KFP's API
    server refuses a run whose value is not a number (v2_template.go:476-510 at 2.17.0), so
    the runner types `--param span=3` by the spec's declaration and run-local refuses a string."""
    from kfp.pipeline_spec.pipeline_spec_pb2 import ParameterType

    from pipeline import kubeflow

    cfg = load_config(CONFIG, {"input_pattern": "{YYYY}-{MM}-{DD}/*.gz", "span": 7}, base_dir=ROOT)
    path = tmp_path / "spans.json"
    kubeflow.compile_pipeline(cfg, str(path))
    job, spec = load_job(str(path))
    declared = spec.root.input_definitions.parameters["span"]
    assert declared.parameter_type == ParameterType.NUMBER_INTEGER and declared.default_value.number_value == 7
    task = spec.root.dag.tasks["ImportExampleGen"]
    assert task.inputs.parameters["span"].component_input_parameter == "span"
    assert "range_config" not in task.inputs.parameters
    component = spec.components[task.component_ref.name].input_definitions.parameters["span"]
    assert component.parameter_type == ParameterType.NUMBER_INTEGER and component.is_optional
    assert pipeline_parameters(job, spec, {})["span"] == 7

    assert typed_parameters(str(path), {"span": "3", "input_base": "gs://b/d"}) == {"span": 3, "input_base": "gs://b/d"}
    with pytest.raises(SpecError, match="run parameter span: the spec declares it NUMBER_INTEGER, got 'newest'"):
        typed_parameters(str(path), {"span": "newest"})
    with pytest.raises(SpecError, match="run parameter span: KFP refuses a str for a NUMBER_INTEGER parameter"):
        pipeline_parameters(job, spec, {"span": "3"})
    assert kfp_runner.main(["run-local", "--spec", str(path), "--param", "span=last", "--local-storage"]) == 2


def test_the_span_parameter_reaches_the_example_gen_driver_as_a_range_config():
    """TFX's Kubeflow ExampleGen driver takes one span from the exec property `range_config`
    (tfx/orchestration/kubeflow/v2/file_based_example_gen/driver.py:85-94)."""
    from tfx.proto import range_config_pb2
    from tfx.utils import proto_utils

    from pipeline.kfp_entrypoint import span_selection

    given = {"inputs": {"parameterValues": {"span": 20758.0, "input_base": "gs://b/d"}}}
    values = span_selection(given)["inputs"]["parameterValues"]
    assert "span" not in values and given["inputs"]["parameterValues"]["span"] == 20758.0
    config = proto_utils.json_to_proto(values["range_config"], range_config_pb2.RangeConfig())
    assert (config.static_range.start_span_number, config.static_range.end_span_number) == (20758, 20758)
    newest = span_selection({"inputs": {"parameterValues": {"span": -1.0}}})
    assert newest["inputs"]["parameterValues"] == {}
    with pytest.raises(ValueError, match="run parameter span: a span number >= 0, or -1 for the newest, got 2.5"):
        span_selection({"inputs": {"parameterValues": {"span": 2.5}}})


def test_spec_matches_golden(compiled):
    new = compiled.read_text()
    old = GOLDEN.read_text()
    if new != old:
        diff = "".join(
            difflib.unified_diff(
                old.splitlines(True), new.splitlines(True), "tests/golden/pipeline.json", "compiled now", n=2
            )
        )
        pytest.fail("the compiled Kubeflow spec changed; review the diff, then `make golden`:\n" + diff[:20000])


def _broken_copy(compiled, tmp_path, mutate):
    data = json.loads(compiled.read_text())
    mutate(data["pipelineSpec"])
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_run_local_refuses_what_open_source_kfp_refuses_before_running_anything(compiled, tmp_path):
    def add_resolver(spec):
        spec["deploymentSpec"]["executors"]["Trainer_executor"] = {
            "resolver": {"outputArtifactQueries": {"model": {"filter": 'schema_title="tfx.Model"'}}}
        }

    with pytest.raises(SpecError, match="resolver executors do not run"):
        run_compiled(_broken_copy(compiled, tmp_path, add_resolver), pipeline_root=str(tmp_path / "root"))
    assert not (tmp_path / "root").exists()


def test_unknown_fields_cycles_and_unknown_parameters_are_spec_errors(compiled, tmp_path):
    with pytest.raises(SpecError, match="not a valid KFP pipeline spec"):
        load_job(_broken_copy(compiled, tmp_path, lambda s: s["root"].update(dagg={})))

    def cycle(spec):
        spec["root"]["dag"]["tasks"]["ImportExampleGen"]["dependentTasks"] = ["SliceReport"]

    _, spec = load_job(_broken_copy(compiled, tmp_path, cycle))
    with pytest.raises(SpecError, match="dependency cycle"):
        execution_order(spec)
    job, spec = load_job(str(compiled))
    with pytest.raises(SpecError, match="unknown run parameter"):
        pipeline_parameters(job, spec, {"train_stepz": "5"})


def test_nodes_reading_the_outside_world_are_not_cached_and_compiling_reads_no_local_input(
    compiled, monkeypatch, tmp_path
):
    from pipeline import beam, kubeflow

    _, spec = load_job(str(compiled))
    uncached = {n for n, t in spec.root.dag.tasks.items() if not t.caching_options.enable_cache}
    assert uncached == {"ImportExampleGen", "BaselineModel"}

    def no_peeking(*args, **kwargs):
        raise AssertionError("compiling for Kubeflow looked at this machine's input or cores")

    monkeypatch.setattr(beam, "input_bytes", no_peeking)
    monkeypatch.setattr(os, "cpu_count", no_peeking)
    cfg = load_config(CONFIG, {"kubeflow_beam_args": []}, base_dir=ROOT)
    job = kubeflow.compile_pipeline(cfg, str(tmp_path / "p.json"))
    args = job["pipelineSpec"]["deploymentSpec"]["executors"]["StatisticsGen_executor"]["container"]["args"]
    assert args[-3:] == [
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=0",
        "--setup_file=/pipeline/setup.py",  # the pod's node args (pipeline/beam.py pod_node_args)
    ]


@pytest.mark.e2e
def test_compiled_spec_runs_twice_the_second_run_reads_the_input_again_and_is_judged_against_the_first(
    tmp_path, small_data_dir
):
    """Each task through the image's entrypoint, with the driver's artifacts, KFP's cache and
    the launcher's downloads: the second run reads the next day's span, does real work, has the
    first model as baseline and warm-starts from it (found by LatestPushedModel in the serving
    directory, as KFP runs no resolver)."""
    spec_path = tmp_path / "pipeline.json"
    serving = tmp_path / "serving"
    data = tmp_path / "data"
    (data / "2026-11-01").mkdir(parents=True)
    shutil.copy(small_data_dir / "part-0.tfrecord.gz", data / "2026-11-01" / "part-0.tfrecord.gz")
    assert (
        kfp_runner.main(
            [
                "compile",
                "--config",
                str(taxi_config(tmp_path)),
                "--output",
                str(spec_path),
                "--set",
                f"image_workdir={ROOT}",
                "--set",
                f"pipeline_root={tmp_path / 'root'}",
                "--set",
                f"serving_dir={serving}",
                "--set",
                f"input_base={data}",
                "--set",
                "input_pattern={YYYY}-{MM}-{DD}/*.tfrecord.gz",
                "--set",
                "warm_start=true",
                "--set",
                "warm_start_steps=20",
                "--set",
                "thresholds={auc = {min = 0.5}}",
                "--set",
                "max_drop={auc = 0.5}",
                "--set",
                f"kubeflow_beam_args={IN_PROCESS}",
            ]
        )
        == 0
    )
    params = {"train_args": '{"num_steps": 100}'}
    run: LocalRun = run_compiled(str(spec_path), params, local_storage=True)
    assert set(run.seconds) == set(load_job(str(spec_path))[1].root.dag.tasks)
    assert set(run.states.values()) == {"done"}

    baseline = run.artifact("BaselineModel", "model")
    assert baseline.metadata["baseline_found"] == 0  # nothing served yet: no baseline
    blessing = run.artifact("Evaluator", "blessing")
    assert blessing.metadata["blessed"] == 1
    pushed = run.artifact("Pusher", "pushed_model")
    assert pushed.metadata["pushed"] == 1
    version_dir = pushed.metadata["pushed_destination"]
    assert os.path.dirname(version_dir) == str(serving / "taxi_tips")
    assert os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
    report = run.artifact("SliceReport", "report")
    assert os.path.isfile(os.path.join(report.uri, "report.html"))
    # The run parameter reached the Trainer: 100 steps, not the config's 1000.
    assert '"num_steps": 100' in Path(run.root, "taxi-tips", run.run_id, "logs", "Trainer.log").read_text()

    assert json.loads(Path(run.artifact("Trainer", "model_run").uri, "warm_start.json").read_text()) == {
        "warm_started": False,
        "detail": "no blessed model yet",
        "steps": 100,
    }

    # The next day's span lands in the input directory before the scheduled second run.
    (data / "2026-11-02").mkdir()
    shutil.copy(data / "2026-11-01" / "part-0.tfrecord.gz", data / "2026-11-02" / "part-0.tfrecord.gz")
    second: LocalRun = run_compiled(str(spec_path), params, local_storage=True)
    assert second.states["ImportSchemaGen"] == "cached"  # constant inputs: KFP's cache serves it
    assert {t for t, s in second.states.items() if s == "done"} == set(second.states) - {"ImportSchemaGen"}
    examples = [r.artifact("ImportExampleGen", "examples") for r in (run, second)]
    assert examples[0].name != examples[1].name and examples[0].uri != examples[1].uri
    assert examples[0].metadata["input_fingerprint"] != examples[1].metadata["input_fingerprint"]
    assert [e.metadata["custom:span"] for e in examples] == [20758, 20759]  # the newest span each day
    # The Trainer started from the model the first run pushed, as LatestPushedModel found it.
    warm = second.artifact("WarmStartModel", "model")
    assert warm.metadata["baseline_found"] == 1 and warm.metadata["source"] == version_dir
    status = json.loads(Path(second.artifact("Trainer", "model_run").uri, "warm_start.json").read_text())
    assert status["warm_started"] is True and status["steps"] == 20, status
    assert status["detail"].startswith(f"from {warm.uri}/"), status
    assert os.path.isfile(os.path.join(version_dir, "assets.extra", "warm_start", "weights.h5"))
    baseline = second.artifact("BaselineModel", "model")
    assert baseline.metadata["baseline_found"] == 1 and baseline.metadata["source"] == version_dir
    # TFX's Evaluator records the baseline it compared against in the blessing.
    judged = second.artifact("Evaluator", "blessing").metadata
    assert (
        judged["baseline_model"] == baseline.uri and judged["current_model"] == second.artifact("Trainer", "model").uri
    )
