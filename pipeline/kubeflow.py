"""Compiling the DAG for Kubeflow Pipelines v2 and reading compiled specs back.

The spec is TFX's `PipelineJob` JSON (schema 2.1, the one open-source KFP's backend reads),
with the runtime parameters' defaults written into the pipeline's own inputs so that a run
created without parameters still gets the config's values.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from pipeline.config import PipelineConfig

LOG = logging.getLogger(__name__)


class SpecError(ValueError):
    """A compiled spec that KFP would reject or that does not match the DAG."""


def compile_pipeline(cfg: PipelineConfig, output: str) -> dict[str, Any]:
    from tfx import v1 as tfx

    from pipeline.dag import KUBEFLOW, create_pipeline, runtime_parameters

    for name in ("pipeline_root", "serving_dir", "input_base"):
        if "://" not in getattr(cfg, name):
            LOG.warning("%s is a path inside the task's container (%s): on a cluster, use a URI "
                        "every task can reach (gs://...)", name, cfg.image_path(name))
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=cfg.image, use_pipeline_spec_2_1=True),
        output_dir=os.path.dirname(os.path.abspath(output)),
        output_filename=os.path.basename(output),
    )
    defaults = {name: p.default for name, p in runtime_parameters(cfg).items()}
    job = runner.run(create_pipeline(cfg, orchestrator=KUBEFLOW), parameter_values=defaults,
                     write_out=False)
    for name, value in defaults.items():
        job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"][name]["defaultValue"] = value
    job.pop("labels", None)  # TFX's telemetry labels name the Python version and host OS
    tmp = f"{output}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(job, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, output)
    return job


def _read_compiled(path: str) -> dict[str, Any]:
    """The compiled `PipelineJob` file as a dict, or a SpecError saying what is wrong."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise SpecError(f"no compiled spec at {path}: run `python kfp_runner.py compile` first") from None
    except json.JSONDecodeError as e:
        raise SpecError(f"{path} is not JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("pipelineSpec"), dict):
        raise SpecError(f"{path} is not a compiled pipeline (no pipelineSpec)")
    return data


def load_job(path: str):
    """The compiled file as kfp's own `PipelineJob` proto; unknown fields are an error."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    data = _read_compiled(path)
    job = pipeline_spec_pb2.PipelineJob()
    try:
        json_format.ParseDict(data, job, ignore_unknown_fields=False)
        spec = pipeline_spec_pb2.PipelineSpec()
        json_format.ParseDict(data["pipelineSpec"], spec, ignore_unknown_fields=False)
    except json_format.ParseError as e:
        raise SpecError(f"{path} is not a valid KFP pipeline spec: {e}") from None
    return job, spec


def task_dependencies(spec) -> dict[str, set[str]]:
    """Task name -> the tasks it waits for, as KFP schedules them."""
    return {name: set(task.dependent_tasks) for name, task in spec.root.dag.tasks.items()}


def pipeline_spec_document(job_path: str) -> dict[str, Any]:
    """The bare pipeline spec that `kfp.Client` uploads (KFP's IR), from a compiled job."""
    return _read_compiled(job_path)["pipelineSpec"]
