"""Compiling the DAG for Kubeflow Pipelines v2 and reading compiled specs back.

The spec is TFX's `PipelineJob` JSON (schema 2.1, the one open-source KFP's backend reads),
with the runtime parameters' defaults written into the pipeline's own inputs so that a run
created without parameters still gets the config's values, and three changes for
open-source KFP (2.16/2.17) that TFX's Vertex-minded compiler does not make:

- every task runs TFX's entrypoint through pipeline/kfp_entrypoint.py (the container
  command), which adapts what KFP's driver and launcher pass it;
- the nodes that read the world outside the pipeline (platforms.Platform.uncached) are not
  cached: KFP's cache key cannot see a changed input directory or a newly pushed model;
- task names are checked against Argo's rule before anything is written.
"""

from __future__ import annotations

import json
import logging
import os
import re
from typing import Any

from pipeline.config import PipelineConfig

LOG = logging.getLogger(__name__)


class SpecError(ValueError):
    """A compiled spec that KFP would reject or that does not match the DAG."""


TFX_ENTRYPOINT = ["python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]
ENTRYPOINT = ["python", "-m", "pipeline.kfp_entrypoint"]
# KFP's Argo compiler names each container task's DAG tasks after the spec's task name, and
# name + "-driver" (backend/src/v2/compiler/argocompiler/dag.go:293-322 at 2.17.0); the API
# server validates the workflow when a run is created (apiserver/resource/resource_manager.go:
# 673) with Argo's rule for DAG task names (argo-workflows v4.0.5 workflow/validate/
# validate.go:1371 -> 1624-1640): [a-zA-Z0-9][-a-zA-Z0-9]*, at most 128 characters.
ARGO_NAME = re.compile(r"[a-zA-Z0-9][-a-zA-Z0-9]*")
ARGO_NAME_MAX = 128
ARGO_SUFFIX = "-driver"


def check_argo_task_names(task_names) -> None:
    for name in task_names:
        for argo_name in (name, name + ARGO_SUFFIX):
            if not ARGO_NAME.fullmatch(argo_name) or len(argo_name) > ARGO_NAME_MAX:
                raise SpecError(
                    f"task {name!r}: Argo refuses the DAG task {argo_name!r} when the run is created "
                    f"(names must match [a-zA-Z0-9][-a-zA-Z0-9]* and have at most {ARGO_NAME_MAX} "
                    "characters): rename the node (its id in pipeline/dag.py)"
                )


def compile_pipeline(cfg: PipelineConfig, output: str) -> dict[str, Any]:
    from tfx import v1 as tfx

    from pipeline.dag import create_pipeline, spans_in_use
    from pipeline.platforms import KUBEFLOW, platform

    for name in ("pipeline_root", "serving_dir", "input_base"):
        if "://" not in getattr(cfg, name):
            LOG.warning(
                "%s is a path inside the task's container (%s): on a cluster, use a URI "
                "every task can reach (gs://...)",
                name,
                cfg.image_path(name),
            )
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=cfg.image, use_pipeline_spec_2_1=True
        ),
        output_dir=os.path.dirname(os.path.abspath(output)),
        output_filename=os.path.basename(output),
    )
    on = platform(cfg, KUBEFLOW)
    defaults = {name: p.default for name, p in on.runtime_parameters.items()}
    job = runner.run(create_pipeline(cfg, orchestrator=KUBEFLOW), parameter_values=defaults, write_out=False)
    for name, value in defaults.items():
        job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"][name]["defaultValue"] = value
    if on.span_parameter and spans_in_use(cfg):
        add_span_parameter(job, cfg.span)
    job.pop("labels", None)  # TFX's telemetry labels name the Python version and host OS
    adapt_for_open_source_kfp(job["pipelineSpec"], uncached=on.uncached)
    tmp = f"{output}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(job, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, output)
    return job


SPAN_PARAMETER = "span"
EXAMPLE_GEN = "ImportExampleGen"
# A run parameter's value must be of the type the root declares: the API server refuses the
# run otherwise (backend/src/apiserver/template/v2_template.go:476-510 at 2.17.0: a number for
# NUMBER_INTEGER and NUMBER_DOUBLE, a string for STRING, a bool for BOOLEAN), and the driver
# checks each task's parameters again (backend/src/v2/driver/resolve.go:169-255).
PARAMETER_TYPES = {"STRING": (str,), "NUMBER_INTEGER": (int, float), "NUMBER_DOUBLE": (int, float), "BOOLEAN": (bool,)}
_FROM_TEXT = {
    "NUMBER_INTEGER": int,
    "NUMBER_DOUBLE": float,
    "BOOLEAN": lambda text: {"true": True, "false": False}[text.lower()],
}


def check_parameter_type(name: str, kind: str, value: Any) -> None:
    wanted = PARAMETER_TYPES.get(kind)
    if wanted and (not isinstance(value, wanted) or (isinstance(value, bool) and bool not in wanted)):
        raise SpecError(f"run parameter {name}: KFP refuses a {type(value).__name__} for a {kind} parameter")


def add_span_parameter(job: dict[str, Any], default: int) -> None:
    """In place: the run parameter `span` (integer; -1: the newest span present when
    ExampleGen runs), passed to ExampleGen, which pipeline/kfp_entrypoint.py turns into the
    RangeConfig TFX's ExampleGen driver takes. TFX's compiler has no way to give a
    component a parameter it does not declare, so it is added as the KFP SDK would: declared
    with its type and default in the root's inputDefinitions, declared by the component
    (isOptional with the default, as sdk/python/kfp/compiler/pipeline_spec_builder.py:
    405-416 at 2.17.0 does), and passed to the task as `componentInputParameter`."""
    spec = job["pipelineSpec"]
    declared = {"parameterType": "NUMBER_INTEGER", "isOptional": True, "defaultValue": default}
    spec["root"]["inputDefinitions"]["parameters"][SPAN_PARAMETER] = dict(declared)
    task = spec["root"]["dag"]["tasks"][EXAMPLE_GEN]
    spec["components"][task["componentRef"]["name"]]["inputDefinitions"]["parameters"][SPAN_PARAMETER] = declared
    task["inputs"]["parameters"][SPAN_PARAMETER] = {"componentInputParameter": SPAN_PARAMETER}
    job.setdefault("runtimeConfig", {}).setdefault("parameterValues", {})[SPAN_PARAMETER] = default


def typed_parameters(job_path: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run parameters given as text (`--param span=3`) as values of the types the spec
    declares, which is what KFP accepts; a SpecError naming the parameter if one is not."""
    if not params:
        return {}
    root = _read_compiled(job_path)["pipelineSpec"].get("root", {})
    declared = root.get("inputDefinitions", {}).get("parameters", {})
    typed = dict(params)
    for name, value in params.items():
        kind = declared.get(name, {}).get("parameterType", "STRING")
        if isinstance(value, str) and kind in _FROM_TEXT:
            try:
                typed[name] = _FROM_TEXT[kind](value.strip())
            except (KeyError, ValueError):
                raise SpecError(f"run parameter {name}: the spec declares it {kind}, got {value!r}") from None
    return typed


# What KFP's launcher accepts as a pipeline root (backend/src/v2/objectstore/config.go:118-139
# at 2.17.0, ParseBucketPathToConfig): a bucket URI of these schemes; anything else fails every
# task ("unsupported Cloud bucket"), and a run created without a root gets the cluster's
# default, minio://mlpipeline/v2/artifacts (config/env.go:38, driver/root_dag.go:108-113).
BUCKET_URI = re.compile(r"(^[a-z][a-z0-9]+:///?)([^/?]+)(/[^?]*)?(\?.+)?$")
LAUNCHER_SCHEMES = ("gs://", "s3://", "minio://", "mem://")


def check_pipeline_root(root: str) -> str:
    m = BUCKET_URI.match(root or "")
    if not m or m.group(1) not in LAUNCHER_SCHEMES:
        raise SpecError(
            f"pipeline root {root!r}: KFP's launcher accepts only a bucket URI "
            f"({', '.join(s + 'BUCKET/...' for s in LAUNCHER_SCHEMES[:3])}); "
            "set pipeline_root in the config and compile again"
        )
    return root


def pipeline_root(job_path: str) -> str:
    """The compiled spec's pipeline root, checked as KFP's launcher checks it."""
    return check_pipeline_root(_read_compiled(job_path).get("runtimeConfig", {}).get("gcsOutputDirectory", ""))


def adapt_for_open_source_kfp(spec: dict[str, Any], uncached=()) -> None:
    """In place: TFX's entrypoint through pipeline/kfp_entrypoint.py, no caching of `uncached`
    tasks, and a SpecError for a task name Argo would refuse."""
    tasks = spec["root"]["dag"]["tasks"]
    check_argo_task_names(tasks)
    for name in uncached:
        tasks[name]["cachingOptions"] = {"enableCache": False}
    for label, executor in spec["deploymentSpec"]["executors"].items():
        container = executor.get("container")
        if container is None:
            continue
        if container["command"] != TFX_ENTRYPOINT:
            raise SpecError(f"executor {label}: unexpected command {container['command']}")
        container["command"] = list(ENTRYPOINT)


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
