"""NaN and infinity in float features are anomalies by default, counted exactly."""

from __future__ import annotations

import copy
import math

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_data_validation.statistics.stats_impl import generate_statistics_in_memory
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.proto import example_gen_pb2
from tfx_bsl.coders import example_coder

from components import example_gen
from components.schema import disallow_nonfinite_floats, load_schema
from components.validation_gate import merge_exact_counts, nonfinite_anomalies
from tests.taxi_sample import SCHEMA_PATH, write_examples


def example(x: float, y: float = 1.0) -> bytes:
    e = tf.train.Example()
    e.features.feature["x"].float_list.value.append(x)
    e.features.feature["y"].float_list.value.append(y)
    e.features.feature["k"].int64_list.value.append(0x7F7F)  # 7f bytes, no float: not counted
    return e.SerializeToString()


def statistics(records):
    return generate_statistics_in_memory(example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records))


RECORDS = [example(v) for v in [1.0, math.nan, 2.0, math.inf, 3.0, -math.inf, math.nan, 4.0]]


def anomaly_reasons(stats, schema) -> dict[str, list[str]]:
    found = tfdv.validate_statistics(stats, schema)
    return {name: sorted(r.description for r in info.reason) for name, info in found.anomaly_info.items()}


def test_curated_schema_refuses_nan_and_infinity_in_every_float_feature():
    schema = load_schema(str(SCHEMA_PATH))
    floats = [f for f in schema.feature if f.type == schema_pb2.FLOAT]
    assert floats
    assert all(f.float_domain.disallow_nan and f.float_domain.disallow_inf for f in floats)
    assert disallow_nonfinite_floats(copy.deepcopy(schema)) == []  # nothing left to add


def test_an_inferred_schema_gets_the_rule_and_tfdv_reports_both():
    stats = statistics(RECORDS)
    inferred = tfdv.infer_schema(stats)
    assert anomaly_reasons(stats, inferred) == {}  # what TFDV does on its own: nothing
    assert disallow_nonfinite_floats(inferred) == ["x", "y"]
    assert anomaly_reasons(stats, inferred) == {"x": ["Float feature has Inf values.", "Float feature has NaN values."]}


def test_a_feature_can_allow_nan_explicitly():
    schema = text_format.Parse(
        """
        feature { name: "x" type: FLOAT float_domain { disallow_nan: false } }
        feature { name: "y" type: FLOAT }
        feature { name: "k" type: INT }
    """,
        schema_pb2.Schema(),
    )
    assert disallow_nonfinite_floats(schema) == ["x", "y"]
    x = schema.feature[0].float_domain
    assert (x.disallow_nan, x.disallow_inf) == (False, True)
    stats = statistics(RECORDS)
    assert anomaly_reasons(stats, schema) == {"x": ["Float feature has Inf values."]}


def test_exact_counts_reach_the_gate_even_where_statistics_miss_them(tmp_path):
    """5% NaN in one split; the gate's line carries the exact count from ExampleGen."""
    records = [example(math.nan if i % 20 == 0 else float(i), math.inf if i == 7 else 0.5) for i in range(400)]
    write_examples(records, tmp_path / "in" / "a.tfrecord.gz")
    splits = example_gen.generate_splits(
        str(tmp_path / "in"),
        example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="all", pattern="*")]),
        example_gen_pb2.Output(
            split_config=example_gen_pb2.SplitConfig(
                splits=[example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=1)]
            )
        ),
        example_gen_pb2.FORMAT_TF_EXAMPLE,
        lambda name: str(tmp_path / "out" / name),
        2,
    )
    assert splits["train"].count == 400
    assert splits["train"].nonfinite == {"x": [20, 0], "y": [0, 1]}

    schema = text_format.Parse(
        """
        feature { name: "x" type: FLOAT float_domain { disallow_nan: true disallow_inf: true } }
        feature { name: "y" type: FLOAT float_domain { disallow_inf: false } }
    """,
        schema_pb2.Schema(),
    )
    exact = nonfinite_anomalies({"train": splits["train"].nonfinite}, schema)
    assert exact == {"train": {"x": "20 NaN values"}}  # y's infinity is allowed
    # TFDV listed x (from full statistics): its line gains the count ...
    merged = merge_exact_counts({"train": ["x: Float feature has NaN values."]}, exact)
    assert merged == {"train": ["x: Float feature has NaN values; 20 NaN values (exact count over every example)"]}
    # ... and where sampled statistics missed it, the gate still lists it.
    assert merge_exact_counts({}, exact) == {
        "train": [
            "x: Float feature has 20 NaN values (exact count over every example); "
            "the schema's float_domain disallows them."
        ]
    }


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -math.nan])
def test_every_nonfinite_float32_has_a_7f_or_ff_byte(value):
    """The executor's pre-filter: only records holding such a byte are inspected."""
    import struct

    raw = struct.pack("<f", value)
    assert raw[3] in (0x7F, 0xFF)
