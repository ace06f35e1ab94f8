"""The one pipeline definition, shared by the local and the Kubeflow runner.

The orchestrators differ in what they can run, not in what the pipeline does; what differs
(paths, the baseline's source, the Evaluator, run parameters, Beam arguments, resources,
which nodes must not be cached) is data in pipeline/platforms.py, and every node has the
same id on both.
"""

from __future__ import annotations

import json
import os

# Not `tfx.v1`: it also imports the Google Cloud extensions (2 s of every run's start-up,
# an unchanged rerun's largest avoidable cost).
from tfx.components import ExampleValidator, StatisticsGen, Trainer, Transform
from tfx.dsl.components.base import executor_spec
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import example_gen_pb2, pusher_pb2, range_config_pb2, trainer_pb2

from components import serving_pusher
from components.drift import DriftCheck
from components.edge_export import EdgeExport
from components.example_gen import ImportExampleGen, make_window_config
from components.schema_importer import FingerprintedImportSchemaGen
from components.slice_report import SliceReport
from components.validation_gate import ValidationGate
from modeling.preprocessing import PLAN_KEY
from modeling.signatures import client_signatures
from pipeline import beam, evaluation
from pipeline.config import PipelineConfig, has_spans
from pipeline.fingerprint import TRAINER_MODULES, TRANSFORM_MODULES, source_fingerprint
from pipeline.infra_validation import make_infra_validator
from pipeline.plan import plan_of
from pipeline.platforms import BASELINE, LOCAL, WARM_START, platform


def example_gen_input_config(cfg: PipelineConfig) -> example_gen_pb2.Input:
    if cfg.split_patterns:
        return example_gen_pb2.Input(
            splits=[
                example_gen_pb2.Input.Split(name=name, pattern=pattern) for name, pattern in cfg.split_patterns.items()
            ]
        )
    return example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="single_split", pattern=cfg.input_pattern)])


def example_gen_output_config(cfg: PipelineConfig) -> example_gen_pb2.Output | None:
    if cfg.split_patterns:
        return None  # keep the existing splits
    return example_gen_pb2.Output(
        split_config=example_gen_pb2.SplitConfig(
            splits=[
                example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
                for name, buckets in cfg.split_ratio.items()
            ]
        )
    )


def spans_in_use(cfg: PipelineConfig) -> bool:
    return not cfg.split_patterns and has_spans(cfg.input_pattern)


def example_gen_span_args(cfg: PipelineConfig, span_parameter: bool = False) -> dict:
    """ImportExampleGen's arguments for a span pattern: TFX's driver picks the span (the
    newest, or `span`: a RangeConfig), the executor reads the window up to it. With
    `span_parameter` the span is the run's parameter instead (pipeline/kubeflow.py)."""
    if not spans_in_use(cfg):
        return {}
    args = {"custom_config": make_window_config(cfg.input_pattern, cfg.window_spans)}
    if cfg.span >= 0 and not span_parameter:
        args["range_config"] = range_config_pb2.RangeConfig(
            static_range=range_config_pb2.StaticRange(start_span_number=cfg.span, end_span_number=cfg.span)
        )
    return args


def drift_thresholds(cfg: PipelineConfig) -> str:
    return json.dumps(
        {
            "l_infinity": cfg.drift_l_infinity,
            "jensen_shannon": cfg.drift_jensen_shannon,
            "features": dict(cfg.drift_thresholds),
        },
        sort_keys=True,
    )


def create_pipeline(cfg: PipelineConfig, metadata_connection_config=None, orchestrator: str = LOCAL) -> Pipeline:
    on = platform(cfg, orchestrator)
    location = on.location
    plan = plan_of(cfg)
    hook_modules = (plan.hook,) if plan.hook else ()
    example_gen = ImportExampleGen(
        input_base=on.input_base,
        input_config=example_gen_input_config(cfg),
        output_config=example_gen_output_config(cfg),
        **example_gen_span_args(cfg, on.span_parameter),
    )
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = FingerprintedImportSchemaGen(
        schema_file=location("schema_path"), fingerprint_of=cfg.path("schema_path")
    ).with_id("ImportSchemaGen")
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    validation_gate = ValidationGate(
        anomalies=example_validator.outputs["anomalies"],
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        fail_on_anomalies=int(cfg.fail_on_anomalies),
    )

    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn="modeling.preprocessing.preprocessing_fn",
        custom_config={
            PLAN_KEY: plan.to_json(),
            "source_fingerprint": source_fingerprint(*TRANSFORM_MODULES, *hook_modules),
        },
        # StatisticsGen already computes the input's statistics, and nothing reads
        # Transform's pre-/post-transform ones: skip those two extra passes.
        disable_statistics=True,
        # The Trainer applies the transform graph as it reads (components/trainer.py):
        # no transformed copy of every row is written for a few thousand to be read.
        materialize=False,
    )
    transform.add_upstream_node(validation_gate)
    drift_check = None
    if spans_in_use(cfg):
        drift_check = DriftCheck(
            statistics=statistics_gen.outputs["statistics"],
            schema=schema_gen.outputs["schema"],
            examples=example_gen.outputs["examples"],
            features=json.dumps(sorted(f.name for f in plan.features)),
            thresholds=drift_thresholds(cfg),
            fail_on_drift=int(cfg.fail_on_drift),
        )
        transform.add_upstream_node(drift_check)
    model_base_path = os.path.join(location("serving_dir"), cfg.model_name)
    warm_start = on.warm_start(model_base_path).with_id(WARM_START) if cfg.warm_start else None

    trainer = Trainer(
        run_fn="modeling.trainer.run_fn",
        examples=example_gen.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=on.train_args,
        eval_args=trainer_pb2.EvalArgs(num_steps=cfg.eval_steps),
        custom_config={
            PLAN_KEY: plan.to_json(),
            "per_replica_batch_size": cfg.per_replica_batch_size,
            "cpu_replicas": cfg.cpu_replicas,
            "hidden_units": list(cfg.hidden_units),
            "learning_rate": cfg.learning_rate,
            "source_fingerprint": source_fingerprint(*TRAINER_MODULES, *hook_modules),
            **(
                {
                    "warm_start": True,
                    "warm_start_steps": cfg.warm_start_steps,
                    "warm_start_max_shift": cfg.warm_start_max_shift,
                }
                if cfg.warm_start
                else {}
            ),
        },
        **({"base_model": warm_start.outputs["model"]} if warm_start is not None else {}),
    )

    if on.trainer_resources is not None:
        trainer.with_platform_config(on.trainer_resources)

    model_resolver = on.baseline(model_base_path, trainer.outputs["model"]).with_id(BASELINE)

    evaluator = on.evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        eval_config=evaluation.eval_config(cfg, plan),
        module_path=evaluation.EXTRACTORS_MODULE,
    ).with_id("Evaluator")

    # Beside the Evaluator, not after it: it needs only the model, and a runner that runs
    # ready nodes at once (pipeline/concurrent_runner.py, Kubeflow) hides the model server's
    # start behind the evaluation. The Pusher waits for both blessings.
    infra_validator = make_infra_validator(
        cfg, trainer.outputs["model"], example_gen.outputs["examples"], signatures=client_signatures(plan.task)
    )

    # After the Evaluator: only a blessed model is converted; the Pusher publishes what passed.
    edge_export = (
        EdgeExport(
            examples=example_gen.outputs["examples"],
            model=trainer.outputs["model"],
            transform_graph=transform.outputs["transform_graph"],
            blessing=evaluator.outputs["blessing"],
            plan=plan.to_json(),
            max_drop=json.dumps(cfg.edge_max_drop, sort_keys=True),
            representative_examples=cfg.edge_representative_examples,
        )
        if cfg.edge_export
        else None
    )

    pusher = serving_pusher.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_validator.outputs["blessing"],
        custom_config={serving_pusher.KEEP_VERSIONS_KEY: cfg.keep_versions},
        custom_executor_spec=executor_spec.ExecutorClassSpec(serving_pusher.Executor),
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=model_base_path)
        ),
        edge_model=edge_export.outputs["edge_model"] if edge_export else None,
    )

    report = SliceReport(
        evaluation=evaluator.outputs["evaluation"],
        statistics=statistics_gen.outputs["statistics"],
        anomalies=example_validator.outputs["anomalies"],
        small_slice_examples=cfg.small_slice_examples,
        **({"drift": drift_check.outputs["drift"]} if drift_check is not None else {}),
        **({"model_run": trainer.outputs["model_run"]} if cfg.warm_start else {}),
        edge_model=edge_export.outputs["edge_model"] if edge_export else None,
    )

    # Runner presets (docs/scale-out.md) over the platform's own per-component arguments.
    node_beam_args = beam.component_args(cfg, dict(on.node_beam_args))
    for component in (example_gen, statistics_gen, transform, evaluator):
        if component.id in node_beam_args:
            component.with_beam_pipeline_args(node_beam_args[component.id])

    return Pipeline(
        pipeline_name=cfg.pipeline_name,
        pipeline_root=location("pipeline_root"),
        components=[
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            validation_gate,
            transform,
            trainer,
            model_resolver,
            evaluator,
            infra_validator,
        ]
        + ([edge_export] if edge_export else [])
        + [pusher, report]
        + [c for c in (drift_check, warm_start) if c is not None],
        enable_cache=cfg.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=on.beam_args,
    )
