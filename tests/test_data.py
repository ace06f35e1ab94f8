"""The bundled data: record count, feature types and presence, and a reproducible build."""

from __future__ import annotations

import subprocess
import sys

import pytest
import tensorflow as tf

from components.schema import load_schema
from tests.taxi_sample import DATA_DIR, PROJECT_DIR, SCHEMA_PATH, read_examples

KIND = {0: None, 1: "bytes_list", 2: "int64_list", 3: "float_list"}  # schema FeatureType -> Feature kind


@pytest.fixture(scope="module")
def examples() -> list[tf.train.Example]:
    return [tf.train.Example.FromString(r) for r in read_examples(str(DATA_DIR / "*.tfrecord.gz"))]


def test_record_count(examples):
    assert len(examples) == 15002  # rows of the source CSV, header excluded


def test_every_feature_has_its_schema_type(examples):
    schema = {f.name: KIND[f.type] for f in load_schema(str(SCHEMA_PATH)).feature}
    for ex in examples:
        for name, feature in ex.features.feature.items():
            assert name in schema, f"{name} is not in the schema"
            assert feature.WhichOneof("kind") == schema[name], name
            assert len(getattr(feature, schema[name]).value) == 1, name


def test_missing_values_are_absent_not_empty(examples):
    present = {}
    for ex in examples:
        for name in ex.features.feature:
            present[name] = present.get(name, 0) + 1
        for name in ("payment_type", "company"):
            if name in ex.features.feature:
                assert ex.features.feature[name].bytes_list.value[0] != b""
    # Required columns are always there; optional ones really are missing sometimes.
    for name in ("fare", "tips", "trip_start_hour", "payment_type"):
        assert present[name] == len(examples), name
    assert present["company"] < len(examples)
    assert present["dropoff_census_tract"] < len(examples)
    assert present["pickup_census_tract"] <= 10


def test_values_are_typed_correctly(examples):
    first = examples[0].features.feature
    # First CSV row: fare 12.45, hour 19, payment "Credit Card", no pickup coordinates.
    assert first["fare"].float_list.value[0] == pytest.approx(12.45)
    assert first["trip_start_hour"].int64_list.value[0] == 19
    assert first["payment_type"].bytes_list.value[0] == b"Credit Card"
    assert "pickup_latitude" not in first


@pytest.mark.slow
def test_conversion_is_deterministic(tmp_path):
    out = tmp_path / "taxi"
    subprocess.run(
        [sys.executable, str(PROJECT_DIR / "data" / "make_tfrecords.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    committed = sorted(DATA_DIR.glob("*.tfrecord.gz"))
    assert [p.name for p in committed] == sorted(p.name for p in out.glob("*.tfrecord.gz"))
    for path in committed:
        assert (out / path.name).read_bytes() == path.read_bytes(), path.name
