"""The one pipeline definition, shared by the local and the Kubeflow runner.

The two orchestrators differ in what they can run, not in what the pipeline does: on
Kubeflow, operators change the input location and the training steps per run (runtime
parameters), and the baseline model comes from the serving directory because open-source
KFP cannot run TFX's resolver tasks (see components/baseline_model.py).
"""

from __future__ import annotations

import json
import os

# Not `tfx.v1`: it also imports the Google Cloud extensions (2 s of every run's start-up,
# an unchanged rerun's largest avoidable cost).
from tfx.components import (Evaluator, ExampleValidator, Pusher, StatisticsGen,
                            Trainer, Transform)
from tfx.dsl.components.base import executor_spec
from tfx.dsl.components.common.resolver import Resolver
from tfx.orchestration.data_types import RuntimeParameter
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import example_gen_pb2, pusher_pb2, trainer_pb2
from tfx.types import Channel, standard_artifacts

from components import baseline_model, serving_pusher
from components.example_gen import ImportExampleGen
from components.baseline_resolver import CANDIDATE, PreviousBlessedModelStrategy
from components.infra_validator import make_infra_validator
from components.slice_report import SliceReport
from components.schema_importer import FingerprintedImportSchemaGen
from components.validation_gate import ValidationGate
from pipeline import beam, evaluation
from pipeline.config import PipelineConfig
from pipeline.fingerprint import TRAINER_MODULES, TRANSFORM_MODULES, source_fingerprint


def trainer_resources(cfg: PipelineConfig):
    """Kubeflow's CPU, memory and GPU request for the Trainer's pod (ignored locally)."""
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


def example_gen_input_config(cfg: PipelineConfig) -> example_gen_pb2.Input:
    if cfg.split_patterns:
        return example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name=name, pattern=pattern)
            for name, pattern in cfg.split_patterns.items()])
    return example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name="single_split", pattern=cfg.input_pattern)])


def example_gen_output_config(cfg: PipelineConfig) -> example_gen_pb2.Output | None:
    if cfg.split_patterns:
        return None  # keep the existing splits
    return example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
        for name, buckets in cfg.split_ratio.items()]))


LOCAL = "local"
KUBEFLOW = "kubeflow"


def runtime_parameters(cfg: PipelineConfig) -> dict[str, RuntimeParameter]:
    """What operators set per Kubeflow run; defaults are the config's values."""
    return {
        "input_base": RuntimeParameter(
            name="input_base", ptype=str, default=cfg.image_path("input_base")),
        "train_args": RuntimeParameter(
            name="train_args", ptype=str, default=json.dumps({"num_steps": cfg.train_steps})),
    }


def create_pipeline(cfg: PipelineConfig, metadata_connection_config=None,
                    orchestrator: str = LOCAL) -> Pipeline:
    if orchestrator not in (LOCAL, KUBEFLOW):
        raise ValueError(f"orchestrator must be {LOCAL!r} or {KUBEFLOW!r}, got {orchestrator!r}")
    kubeflow = orchestrator == KUBEFLOW
    params = runtime_parameters(cfg) if kubeflow else {}
    location = cfg.image_path if kubeflow else cfg.path
    example_gen = ImportExampleGen(
        input_base=params.get("input_base", location("input_base")),
        input_config=example_gen_input_config(cfg),
        output_config=example_gen_output_config(cfg),
    )
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = FingerprintedImportSchemaGen(
        schema_file=location("schema_path"), fingerprint_of=cfg.path("schema_path")).with_id("ImportSchemaGen")
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    validation_gate = ValidationGate(
        anomalies=example_validator.outputs["anomalies"],
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        fail_on_anomalies=int(cfg.fail_on_anomalies))

    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn="components.preprocessing.preprocessing_fn",
        custom_config={"source_fingerprint": source_fingerprint(*TRANSFORM_MODULES)},
        # StatisticsGen already computes the input's statistics, and nothing reads
        # Transform's pre-/post-transform ones: skip those two extra passes.
        disable_statistics=True,
        # The Trainer applies the transform graph as it reads (components/trainer.py):
        # no transformed copy of every row is written for a few thousand to be read.
        materialize=False,
    )
    transform.add_upstream_node(validation_gate)

    trainer = Trainer(
        run_fn="components.trainer.run_fn",
        examples=example_gen.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=params.get("train_args", trainer_pb2.TrainArgs(num_steps=cfg.train_steps)),
        eval_args=trainer_pb2.EvalArgs(num_steps=cfg.eval_steps),
        custom_config={
            "per_replica_batch_size": cfg.per_replica_batch_size,
            "cpu_replicas": cfg.cpu_replicas,
            "hidden_units": list(cfg.hidden_units),
            "learning_rate": cfg.learning_rate,
            "source_fingerprint": source_fingerprint(*TRAINER_MODULES),
        },
    )

    if kubeflow and (cfg.trainer_cpu or cfg.trainer_memory_gb or cfg.trainer_gpus):
        trainer.with_platform_config(trainer_resources(cfg))

    model_base_path = os.path.join(location("serving_dir"), cfg.model_name)
    if kubeflow:
        model_resolver = baseline_model.LatestPushedModel(
            model_base_path=model_base_path).with_id("latest_pushed_model")
    else:
        model_resolver = Resolver(
            strategy_class=PreviousBlessedModelStrategy,
            model=Channel(type=standard_artifacts.Model),
            model_blessing=Channel(type=standard_artifacts.ModelBlessing),
            **{CANDIDATE: trainer.outputs["model"]},
        ).with_id("latest_blessed_model_resolver")

    evaluator_class = baseline_model.BaselineAwareEvaluator if kubeflow else Evaluator
    evaluator = evaluator_class(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        eval_config=evaluation.eval_config(cfg),
    ).with_id("Evaluator")

    # After the Evaluator (not beside it): a model is infra-validated once it is judged, so
    # the run reads evaluation -> serving check -> push.
    infra_validator = make_infra_validator(cfg, trainer.outputs["model"], example_gen.outputs["examples"])
    infra_validator.add_upstream_node(evaluator)

    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_validator.outputs["blessing"],
        custom_config={serving_pusher.KEEP_VERSIONS_KEY: cfg.keep_versions},
        custom_executor_spec=executor_spec.ExecutorClassSpec(serving_pusher.Executor),
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(
                base_directory=model_base_path)),
    )

    report = SliceReport(
        evaluation=evaluator.outputs["evaluation"],
        statistics=statistics_gen.outputs["statistics"],
        anomalies=example_validator.outputs["anomalies"],
        small_slice_examples=cfg.small_slice_examples,
    )

    if kubeflow and cfg.kubeflow_beam_args:
        beam_args, node_beam_args = list(cfg.kubeflow_beam_args), {}
    else:
        beam_args, node_beam_args = beam.plan(cfg)
        if kubeflow:  # sized from this machine's cores: not for the cluster's pods
            node_beam_args = {}
    for component in (example_gen, statistics_gen, transform):
        if component.id in node_beam_args:
            component.with_beam_pipeline_args(node_beam_args[component.id])

    return Pipeline(
        pipeline_name=cfg.pipeline_name,
        pipeline_root=location("pipeline_root"),
        components=[example_gen, statistics_gen, schema_gen, example_validator, validation_gate,
                    transform, trainer, model_resolver, evaluator, infra_validator, pusher, report],
        enable_cache=cfg.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_args,
    )
