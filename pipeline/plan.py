"""The configuration's `Plan` (modeling/roles.py): task, label and feature roles.

Decided when the pipeline is built, so the model head, the evaluation and a compiled
Kubeflow spec agree. Only when the schema cannot tell the task (a label with no domain)
does it read a sample of the label from the input files, and it says so.
"""

from __future__ import annotations

import glob
import itertools
import json
import os

from modeling.roles import Plan, make_plan
from pipeline.config import PipelineConfig, glob_pattern

SAMPLE_RECORDS = 5000
_CACHE: dict[str, Plan] = {}


def plan_of(cfg: PipelineConfig) -> Plan:
    from components.schema import load_schema

    key = json.dumps(
        [
            cfg.path("schema_path"),
            cfg.path("input_base"),
            cfg.input_pattern,
            cfg.split_patterns,
            cfg.label,
            cfg.task,
            cfg.positive_class,
            cfg.features,
            cfg.exclude_features,
            cfg.feature_roles,
            cfg.hook,
            cfg.vocab_size,
            cfg.oov_buckets,
            cfg.quantile_buckets,
        ],
        sort_keys=True,
    )
    if key not in _CACHE:
        _CACHE[key] = make_plan(
            load_schema(cfg.path("schema_path")),
            label=cfg.label,
            task=cfg.task,
            positive_class=cfg.positive_class,
            features=cfg.features,
            exclude=cfg.exclude_features,
            roles=cfg.feature_roles,
            hook=cfg.hook,
            label_sample=label_sampler(cfg),
            vocab_size=cfg.vocab_size,
            oov_buckets=cfg.oov_buckets,
            quantile_buckets=cfg.quantile_buckets,
        )
    return _CACHE[key]


def input_files(cfg: PipelineConfig) -> list[str]:
    base = cfg.path("input_base")
    patterns = [cfg.split_patterns.get("train", "")] if cfg.split_patterns else [glob_pattern(cfg.input_pattern)]
    return sorted(f for p in patterns if p for f in glob.glob(os.path.join(base, p)) if os.path.isfile(f))


def label_sampler(cfg: PipelineConfig):
    """A function returning the label's values in the first records of the input, or None
    when the input is not on this machine (a gs:// path, or files not there)."""
    if "://" in cfg.path("input_base") or not cfg.label:
        return None
    files = input_files(cfg)
    if not files:
        return None

    def sample() -> list:
        # Protobuf only, no TensorFlow op: TensorFlow's devices must stay unset until the
        # runner has split the CPU into replicas.
        from tensorflow.core.example import example_pb2

        from components.example_gen import read_records

        values: list = []
        for path in files:
            for record in itertools.islice(read_records(path), SAMPLE_RECORDS - len(values)):
                feature = example_pb2.Example.FromString(record).features.feature.get(cfg.label)
                kind = feature.WhichOneof("kind") if feature is not None else None
                if kind:
                    values.extend(getattr(feature, kind).value[:1])
            if len(values) >= SAMPLE_RECORDS:
                break
        return values

    return sample
