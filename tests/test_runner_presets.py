"""Runner presets: what each distributed Beam runner needs is checked before anything runs,
and the compiled Kubeflow spec hands each Beam component its runner's arguments.

No Flink, Spark or Dataflow service is reachable here: these checks read the arguments
that the spec would hand to Beam; tests/test_portable_e2e.py runs the DAG through Beam's
PortableRunner against a local job service.
"""

from __future__ import annotations

import pytest

import kfp_runner
from pipeline import beam
from pipeline.config import BEAM_COMPONENTS, ConfigError, load_config
from pipeline.kfp_local import _deployment
from pipeline.kubeflow import load_job
from tests.taxi_sample import PROJECT_DIR

CONFIG = PROJECT_DIR / "configs" / "kubeflow.toml"
DATAFLOW = {
    "beam_runner": "dataflow",
    "dataflow_project": "acme-ml",
    "dataflow_region": "europe-west4",
    "dataflow_temp_location": "gs://acme-ml/tmp",
    "pipeline_root": "gs://acme-ml/root",
}
FLINK = {
    "beam_runner": "flink",
    "portable_job_endpoint": "flink-jobserver.beam:8099",
    "portable_environment_type": "EXTERNAL",
    "portable_environment_config": "localhost:50000",
}


def _cfg(**overrides):
    return load_config(CONFIG, overrides, base_dir=PROJECT_DIR)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"beam_runner": "dataflow"},
            "dataflow_project: needed for the dataflow runner (ImportExampleGen, StatisticsGen, Transform, Evaluator)",
        ),
        ({**DATAFLOW, "dataflow_region": ""}, "dataflow_region: needed for the dataflow runner"),
        ({**DATAFLOW, "dataflow_temp_location": "/tmp/x"}, "dataflow_temp_location: Dataflow's workers"),
        ({**DATAFLOW, "pipeline_root": "build/root"}, "pipeline_root: Dataflow's workers"),
        ({"beam_runners": {"Evaluator": "spark"}}, "portable_job_endpoint: needed for the spark runner (Evaluator)"),
        (
            {**FLINK, "portable_environment_config": ""},
            "portable_environment_config: needed for portable_environment_type EXTERNAL",
        ),
        ({**FLINK, "portable_job_endpoint": "flink"}, "portable_job_endpoint: HOST:PORT"),
        ({**FLINK, "portable_environment_type": "docker"}, "portable_environment_type: one of DOCKER"),
        ({"beam_runner": "flinkk"}, "beam_runner: one of direct, dataflow, flink, spark, portable"),
        ({"beam_runners": {"Trainer": "dataflow"}}, "beam_runners.Trainer: not a Beam component"),
        ({"beam_component_args": {"Evaluator": ["machine_type=n1"]}}, "beam_component_args.Evaluator: must be"),
    ],
)
def test_a_missing_or_bad_runner_option_is_one_line_naming_it(overrides, message):
    with pytest.raises(ConfigError) as e:
        _cfg(**overrides)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_the_command_line_refuses_before_compiling(tmp_path, capsys):
    out = tmp_path / "spec.json"
    assert (
        kfp_runner.main(["compile", "--config", str(CONFIG), "--output", str(out), "--set", "beam_runner=dataflow"])
        == 2
    )
    assert "dataflow_project: needed" in capsys.readouterr().err
    assert not out.exists()


def test_direct_is_the_default_and_adds_nothing():
    cfg = _cfg()
    assert beam.component_args(cfg, {}) == {}


def test_docker_workers_default_to_the_pipeline_image():
    cfg = _cfg(beam_runner="spark", portable_job_endpoint="spark-jobserver:8099")
    args = beam.runner_args(cfg, "spark")
    assert args == [
        "--runner=PortableRunner",
        "--job_endpoint=spark-jobserver:8099",
        "--environment_type=DOCKER",
        f"--environment_config={cfg.image}",
        f"--sdk_container_image={cfg.image}",
    ]


def _executor_args(spec_path) -> dict[str, list[str]]:
    _, spec = load_job(str(spec_path))
    return {label.removesuffix("_executor"): list(e.container.args) for label, e in _deployment(spec).executors.items()}


def _beam_option(args: list[str], name: str) -> str | None:
    """The value Beam's argument parser ends up with: the last occurrence wins."""
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    return values[-1] if values else None


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    def compile_with(name, overrides):
        out = tmp_path_factory.mktemp("presets") / f"{name}.json"
        sets = [a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]
        assert kfp_runner.main(["compile", "--config", str(CONFIG), "--output", str(out), *sets]) == 0
        return _executor_args(out)

    image = "europe-docker.pkg.dev/acme-ml/pipelines/taxi-tfx-pipeline:1.4"
    return {
        "dataflow": compile_with(
            "dataflow",
            {
                **DATAFLOW,
                "image": image,
                "beam_runners": '{Evaluator = "direct"}',
                "beam_component_args": '{Transform = ["--machine_type=n1-highmem-8", "--max_num_workers=20"]}',
            },
        ),
        "flink": compile_with("flink", {**FLINK, "image": image}),
    }


def test_dataflow_preset_reaches_each_beam_component(compiled):
    args = compiled["dataflow"]
    image = "europe-docker.pkg.dev/acme-ml/pipelines/taxi-tfx-pipeline:1.4"
    for node in ("ImportExampleGen", "StatisticsGen", "Transform"):
        assert _beam_option(args[node], "runner") == "DataflowRunner", node
        assert _beam_option(args[node], "project") == "acme-ml"
        assert _beam_option(args[node], "region") == "europe-west4"
        assert _beam_option(args[node], "temp_location") == "gs://acme-ml/tmp"
        # The pipeline image is the workers' SDK container, with the SDK that is in it.
        assert _beam_option(args[node], "sdk_container_image") == image
        assert _beam_option(args[node], "sdk_location") == "container"
    assert _beam_option(args["Transform"], "machine_type") == "n1-highmem-8"
    assert _beam_option(args["Transform"], "max_num_workers") == "20"
    assert _beam_option(args["StatisticsGen"], "machine_type") is None
    # Set apart: the Evaluator stays on the pod's own Beam (kubeflow_beam_args).
    assert _beam_option(args["Evaluator"], "runner") == "FnApiRunner"
    assert _beam_option(args["Evaluator"], "direct_running_mode") == "multi_processing"
    assert _beam_option(args["Evaluator"], "project") is None


def test_flink_preset_reaches_each_beam_component(compiled):
    args = compiled["flink"]
    for node in BEAM_COMPONENTS:
        assert _beam_option(args[node], "runner") == "PortableRunner", node
        assert _beam_option(args[node], "job_endpoint") == "flink-jobserver.beam:8099"
        assert _beam_option(args[node], "environment_type") == "EXTERNAL"
        assert _beam_option(args[node], "environment_config") == "localhost:50000"


def test_components_without_beam_get_no_runner_preset(compiled):
    for preset, args in compiled.items():
        for node, node_args in args.items():
            if node not in BEAM_COMPONENTS:
                assert _beam_option(node_args, "runner") == "FnApiRunner", (preset, node)
                assert not any(a.startswith(("--job_endpoint", "--project", "--temp_location")) for a in node_args)
