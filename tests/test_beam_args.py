"""Beam's running mode follows the input size unless the configuration names one."""

from __future__ import annotations

import os

from pipeline import beam
from pipeline.config import load_config
from tests.taxi_sample import PROJECT_DIR


def _cfg(**overrides):
    return load_config(PROJECT_DIR / "configs" / "local.toml", overrides, base_dir=PROJECT_DIR)


def test_small_input_runs_in_process():
    args = beam.resolve(_cfg(), size=1 << 20, cores=2)
    assert "--direct_running_mode=in_memory" in args and "--direct_num_workers=1" in args
    assert "--direct_running_mode=auto" not in args


def test_large_input_gets_a_worker_per_core():
    args = beam.resolve(_cfg(), size=100 << 20, cores=8)
    assert "--direct_running_mode=multi_processing" in args and "--direct_num_workers=8" in args


def test_one_core_never_spawns_workers():
    assert "--direct_running_mode=in_memory" in beam.resolve(_cfg(), size=100 << 20, cores=1)


def test_the_bundled_data_is_small():
    assert "--direct_running_mode=in_memory" in beam.resolve(_cfg())


def test_an_explicit_mode_is_kept():
    explicit = ["--runner=FnApiRunner", "--direct_running_mode=multi_threading", "--direct_num_workers=3"]
    assert beam.resolve(_cfg(beam_args=explicit), size=1, cores=2) == explicit


def per_node(cfg, size, cores):
    return beam.plan(cfg, size=size, cores=cores)[1]


def test_large_input_on_two_cores_keeps_vectorised_components_in_process():
    cfg = _cfg()
    assert per_node(cfg, size=100 << 20, cores=2) == {
        # ExampleGen: one in-process worker per core, so one output file per core.
        "ImportExampleGen": ["--direct_running_mode=in_memory", "--direct_num_workers=2"],
        "StatisticsGen": ["--direct_running_mode=in_memory", "--direct_num_workers=1"],
        "Transform": ["--direct_running_mode=in_memory", "--direct_num_workers=1"],
    }
    assert per_node(cfg, size=1 << 20, cores=2) == {}  # all in-process already
    assert per_node(cfg, size=100 << 20, cores=8) == {}  # untested there: workers
    explicit = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing"]
    assert per_node(_cfg(beam_args=explicit), size=100 << 20, cores=2) == {}


def test_component_args_come_after_the_pipeline_args(tmp_path, monkeypatch):
    from pipeline.dag import create_pipeline

    monkeypatch.setattr(beam, "input_bytes", lambda cfg: 100 << 20)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    pipeline = create_pipeline(_cfg(pipeline_root=str(tmp_path)))
    for component in pipeline.components:
        if component.id in ("ImportExampleGen", "Transform", "Evaluator"):
            args = pipeline.beam_pipeline_args + component.executor_spec.beam_pipeline_args
            modes = [a for a in args if a.startswith("--direct_running_mode=")]
            expected = "multi_processing" if component.id == "Evaluator" else "in_memory"
            assert modes[-1] == f"--direct_running_mode={expected}", (component.id, args)


def test_local_beam_components_say_their_workers_have_the_dependencies(tmp_path):
    """Otherwise TFX builds an sdist of itself before every Beam component (seconds each),
    which the FnApiRunner never stages. TFX's own check decides: it must return the args as
    they are, without building anything."""
    from tfx.utils import dependency_utils

    from pipeline.dag import create_pipeline

    pipeline = create_pipeline(_cfg(pipeline_root=str(tmp_path)))
    beam_nodes = [c for c in pipeline.components if hasattr(c.executor_spec, "beam_pipeline_args")]
    assert sorted(c.id for c in beam_nodes) == sorted(beam.BEAM_COMPONENTS)
    for component in beam_nodes:
        args = pipeline.beam_pipeline_args + component.executor_spec.beam_pipeline_args
        assert dependency_utils.make_beam_dependency_flags(args) == args, component.id


def test_kubeflow_beam_components_name_the_setup_file_the_image_installed(tmp_path):
    """The same check for the pods: without it every Beam task builds an sdist of TFX. The
    file named is the one the image's `pip install .` read (tests/test_dockerfile.py
    checks the Dockerfile's side); a component on another runner gets that runner's args."""
    from tfx.utils import dependency_utils

    from pipeline.dag import create_pipeline
    from pipeline.platforms import KUBEFLOW

    cfg = load_config(PROJECT_DIR / "configs" / "kubeflow.toml", base_dir=PROJECT_DIR)
    pipeline = create_pipeline(cfg, orchestrator=KUBEFLOW)
    for component in [c for c in pipeline.components if c.id in beam.BEAM_COMPONENTS]:
        args = pipeline.beam_pipeline_args + component.executor_spec.beam_pipeline_args
        assert "--setup_file=/pipeline/setup.py" in args, component.id
        assert dependency_utils.make_beam_dependency_flags(args) == args, component.id

    on_dataflow = cfg.replace(
        beam_runners={"Transform": "dataflow"},
        dataflow_project="p",
        dataflow_region="r",
        dataflow_temp_location="gs://b/tmp",
    )
    transform = next(c for c in create_pipeline(on_dataflow, orchestrator=KUBEFLOW).components if c.id == "Transform")
    assert not any(a.startswith("--setup_file") for a in transform.executor_spec.beam_pipeline_args)


def test_other_runners_get_no_dependency_claim():
    cfg = _cfg(beam_args=["--runner=DirectRunner", "--direct_running_mode=auto"])
    assert beam.local_node_args(cfg, {}) == {}
    assert beam.local_node_args(_cfg(), {})["Evaluator"] == beam.LOCAL_DEPENDENCY_ARGS
