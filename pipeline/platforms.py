"""What the local run and Kubeflow do differently, as data: one `Platform` record each.

`pipeline.dag.create_pipeline` builds one DAG with the same node ids on both and reads every
difference from here:

- paths: locally as this machine sees them; on Kubeflow as a task in the image sees them;
- the baseline model: locally TFX's Resolver over ML Metadata; on Kubeflow the serving
  directory's latest version, because open-source KFP cannot run resolver tasks (its Argo
  compiler answers "resolver executors not implemented": backend/src/v2/compiler/argocompiler/
  dag.go:349 at 2.17.0) and gives a task no access to ML Metadata;
- run parameters (Kubeflow only: operators set them per run);
- Beam arguments: locally sized from the input and this machine's cores (pipeline/beam.py);
  on Kubeflow decided in the task's pod, so that compiling reads no input file and no core
  count of the machine that compiles;
- the Trainer pod's resources (Kubeflow only);
- nodes whose output depends on the world outside the pipeline (the input directory, the
  serving directory). KFP's cache key is the task's parameters, its input artifacts' ids, its
  command and image (backend/src/v2/cacheutils/cache.go:173-233), so with caching such a task
  would return its first run's output forever: the daily run would read no new data and
  find no baseline. Kubeflow compiles them uncached (pipeline/kubeflow.py); locally TFX's
  ExampleGen driver fingerprints the input files and resolvers always resolve.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from pipeline import beam
from pipeline.config import PipelineConfig

LOCAL = "local"
KUBEFLOW = "kubeflow"
# Node ids are used as they are as Argo DAG task names on Kubeflow, and Argo accepts only
# [a-zA-Z0-9][-a-zA-Z0-9]* (see pipeline/kubeflow.py): no underscores.
BASELINE = "BaselineModel"
# The model the Trainer warm-starts from (warm_start = true): locally TFX's Resolver for the
# latest blessed model; on Kubeflow, which runs no resolver, the latest pushed version.
WARM_START = "WarmStartModel"


@dataclass(frozen=True)
class Platform:
    name: str
    location: Callable[[str], str]  # a path setting -> where tasks find it
    input_base: Any  # str, or a RuntimeParameter
    train_args: Any  # trainer_pb2.TrainArgs, or a RuntimeParameter (JSON)
    baseline: Callable[..., Any]  # (model_base_path, candidate model channel) -> node with outputs["model"]
    evaluator: type
    beam_args: list[str]
    node_beam_args: dict[str, list[str]] = field(default_factory=dict)
    trainer_resources: Any = None  # PipelineContainerSpec.ResourceSpec, or None
    uncached: tuple[str, ...] = ()  # node ids whose output depends on the world outside
    runtime_parameters: dict[str, Any] = field(default_factory=dict)
    warm_start: Callable[..., Any] | None = None  # (model_base_path) -> node with outputs["model"]
    # The span to read is a run parameter (pipeline/kubeflow.py adds it to the compiled spec)
    # rather than a RangeConfig compiled in: KFP runs are started with parameters.
    span_parameter: bool = False


def runtime_parameters(cfg: PipelineConfig) -> dict[str, Any]:
    """What operators set per Kubeflow run; defaults are the config's values."""
    from tfx.orchestration.data_types import RuntimeParameter

    return {
        "input_base": RuntimeParameter(name="input_base", ptype=str, default=cfg.image_path("input_base")),
        "train_args": RuntimeParameter(
            name="train_args", ptype=str, default=json.dumps({"num_steps": cfg.train_steps})
        ),
    }


def trainer_resources(cfg: PipelineConfig):
    """Kubeflow's CPU, memory and GPU request for the Trainer's pod; None for the defaults."""
    if not (cfg.trainer_cpu or cfg.trainer_memory_gb or cfg.trainer_gpus):
        return None
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec()
    # Both the deprecated numeric fields (what TFX's compiler checks) and the string ones
    # (what current KFP backends read).
    if cfg.trainer_cpu:
        spec.cpu_limit = spec.cpu_request = cfg.trainer_cpu
        spec.resource_cpu_limit = spec.resource_cpu_request = f"{cfg.trainer_cpu:g}"
    if cfg.trainer_memory_gb:
        spec.memory_limit = spec.memory_request = cfg.trainer_memory_gb
        spec.resource_memory_limit = spec.resource_memory_request = f"{cfg.trainer_memory_gb:g}G"
    if cfg.trainer_gpus:
        spec.accelerator.type = spec.accelerator.resource_type = cfg.trainer_gpu_type
        spec.accelerator.count = cfg.trainer_gpus
        spec.accelerator.resource_count = str(cfg.trainer_gpus)
    return spec


def pod_beam_args(cfg: PipelineConfig) -> list[str]:
    """Beam arguments decided in the pod: `kubeflow_beam_args`, else `beam_args` with `auto`
    meaning a worker per core of the pod (what pipeline/beam.py decides for remote input)."""
    if cfg.kubeflow_beam_args:
        return list(cfg.kubeflow_beam_args)
    args = list(cfg.beam_args)
    if beam.AUTO not in args:
        return args
    args = [a for a in args if a != beam.AUTO and not a.startswith("--direct_num_workers")]
    return args + ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]


def _resolver_baseline(model_base_path: str, candidate):
    from tfx.dsl.components.common.resolver import Resolver
    from tfx.types import Channel, standard_artifacts

    from components.baseline_resolver import CANDIDATE, PreviousBlessedModelStrategy

    return Resolver(
        strategy_class=PreviousBlessedModelStrategy,
        model=Channel(type=standard_artifacts.Model),
        model_blessing=Channel(type=standard_artifacts.ModelBlessing),
        **{CANDIDATE: candidate},
    )


def _latest_blessed_model(model_base_path: str):
    from tfx.dsl.components.common.resolver import Resolver
    from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy
    from tfx.types import Channel, standard_artifacts

    return Resolver(
        strategy_class=LatestBlessedModelStrategy,
        model=Channel(type=standard_artifacts.Model),
        model_blessing=Channel(type=standard_artifacts.ModelBlessing),
    )


def _serving_dir_model(model_base_path: str):
    from components import baseline_model

    return baseline_model.LatestPushedModel(model_base_path=model_base_path)


def _serving_dir_baseline(model_base_path: str, candidate):
    from components import baseline_model

    return baseline_model.LatestPushedModel(model_base_path=model_base_path)


def local(cfg: PipelineConfig) -> Platform:
    from tfx.components import Evaluator
    from tfx.proto import trainer_pb2

    beam_args, node_beam_args = beam.plan(cfg)
    return Platform(
        name=LOCAL,
        location=cfg.path,
        input_base=cfg.path("input_base"),
        train_args=trainer_pb2.TrainArgs(num_steps=cfg.train_steps),
        baseline=_resolver_baseline,
        evaluator=Evaluator,
        beam_args=beam_args,
        node_beam_args=beam.local_node_args(cfg, node_beam_args),
        warm_start=_latest_blessed_model,
    )


def kubeflow(cfg: PipelineConfig) -> Platform:
    from components import baseline_model

    params = runtime_parameters(cfg)
    pod_args = pod_beam_args(cfg)
    return Platform(
        name=KUBEFLOW,
        location=cfg.image_path,
        input_base=params["input_base"],
        train_args=params["train_args"],
        baseline=_serving_dir_baseline,
        evaluator=baseline_model.BaselineAwareEvaluator,
        beam_args=pod_args,
        node_beam_args=beam.pod_node_args(cfg, pod_args),
        trainer_resources=trainer_resources(cfg),
        uncached=("ImportExampleGen", BASELINE) + ((WARM_START,) if cfg.warm_start else ()),
        runtime_parameters=params,
        warm_start=_serving_dir_model,
        span_parameter=True,
    )


PLATFORMS: dict[str, Callable[[PipelineConfig], Platform]] = {LOCAL: local, KUBEFLOW: kubeflow}


def platform(cfg: PipelineConfig, name: str) -> Platform:
    if name not in PLATFORMS:
        raise ValueError(f"orchestrator must be one of {sorted(PLATFORMS)}, got {name!r}")
    return PLATFORMS[name](cfg)
