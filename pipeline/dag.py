"""The one pipeline definition, used unchanged by the local and the Kubeflow runner."""

from __future__ import annotations

import os

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components import serving_pusher
from components.slice_report import SliceReport
from components.schema_importer import FingerprintedImportSchemaGen
from components.validation_gate import ValidationGate
from pipeline import beam, evaluation
from pipeline.config import PipelineConfig
from pipeline.fingerprint import TRAINER_MODULES, TRANSFORM_MODULES, source_fingerprint


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


def create_pipeline(cfg: PipelineConfig, metadata_connection_config=None) -> tfx.dsl.Pipeline:
    example_gen = tfx.components.ImportExampleGen(
        input_base=cfg.path("input_base"),
        input_config=example_gen_input_config(cfg),
        output_config=example_gen_output_config(cfg),
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = FingerprintedImportSchemaGen(schema_file=cfg.path("schema_path")).with_id("ImportSchemaGen")
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    validation_gate = ValidationGate(
        anomalies=example_validator.outputs["anomalies"],
        fail_on_anomalies=int(cfg.fail_on_anomalies))

    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn="components.preprocessing.preprocessing_fn",
        custom_config={"source_fingerprint": source_fingerprint(*TRANSFORM_MODULES)},
        # StatisticsGen already computes the input's statistics, and nothing reads
        # Transform's pre-/post-transform ones: skip those two extra passes.
        disable_statistics=True,
    )
    transform.add_upstream_node(validation_gate)

    trainer = tfx.components.Trainer(
        run_fn="components.trainer.run_fn",
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(num_steps=cfg.train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=cfg.eval_steps),
        custom_config={
            "per_replica_batch_size": cfg.per_replica_batch_size,
            "cpu_replicas": cfg.cpu_replicas,
            "hidden_units": list(cfg.hidden_units),
            "learning_rate": cfg.learning_rate,
            "source_fingerprint": source_fingerprint(*TRAINER_MODULES),
        },
    )

    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")

    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        eval_config=evaluation.eval_config(cfg),
    )

    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        custom_config={serving_pusher.KEEP_VERSIONS_KEY: cfg.keep_versions},
        custom_executor_spec=executor_spec.ExecutorClassSpec(serving_pusher.Executor),
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(
                base_directory=os.path.join(cfg.path("serving_dir"), cfg.model_name))),
    )

    report = SliceReport(
        evaluation=evaluator.outputs["evaluation"],
        statistics=statistics_gen.outputs["statistics"],
        anomalies=example_validator.outputs["anomalies"],
        small_slice_examples=cfg.small_slice_examples,
    )

    return tfx.dsl.Pipeline(
        pipeline_name=cfg.pipeline_name,
        pipeline_root=cfg.path("pipeline_root"),
        components=[example_gen, statistics_gen, schema_gen, example_validator, validation_gate,
                    transform, trainer, model_resolver, evaluator, pusher, report],
        enable_cache=cfg.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam.resolve(cfg),
    )
