"""The taxi plan's preprocessing_fn on a few hand-made rows through real tf.Transform, and
the model's shape and serving signatures built on that transform."""

from __future__ import annotations

import json

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import schema_utils

from components.schema import load_schema
from modeling.network import build_keras_model, category_sizes
from modeling.preprocessing import PLAN_KEY, preprocessing_fn
from modeling.roles import LABEL_KEY, make_plan
from modeling.signatures import serving_signatures
from tests.taxi_sample import SCHEMA_PATH

BUCKETS = 10
PLAN = make_plan(
    load_schema(str(SCHEMA_PATH)),
    label="big_tipper",
    hook="modeling.taxi_hook",
    exclude=["pickup_census_tract", "dropoff_census_tract", "trip_start_timestamp"],
    roles={k: "bucketized" for k in ("pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude")},
    quantile_buckets=BUCKETS,
)
KEY = {f.name: f.key for f in PLAN.features}

BEAM_OPTIONS = beam.options.pipeline_options.PipelineOptions(
    ["--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]
)


def row(fare, tips, hour, payment, company=None, lat=None, area=None, miles=1.0, seconds=600):
    r = {
        "fare": fare,
        "tips": tips,
        "trip_start_hour": hour,
        "trip_start_day": 3,
        "trip_start_month": 5,
        "trip_start_timestamp": 1400000000,
        "payment_type": payment,
        "trip_miles": miles,
        "trip_seconds": seconds,
    }
    if company is not None:
        r["company"] = company
    if lat is not None:
        r.update(pickup_latitude=lat, dropoff_latitude=lat, pickup_longitude=-87.6, dropoff_longitude=-87.6)
    if area is not None:
        r.update(pickup_community_area=area, dropoff_community_area=area)
    return r


# trip_seconds rise with the row: rows are told apart by its (z-scored) order.
ROWS = [
    row(10.0, 3.0, 8, "Credit Card", "A", 41.80, 8, seconds=100),  # big tipper (30%)
    row(10.0, 1.0, 9, "Credit Card", "A", 41.85, 99, seconds=200),  # 10%: not; area 99 out of domain
    row(20.0, 0.0, 17, "Cash", "B", 41.90, 32, seconds=300),
    row(5.0, 2.0, 23, "Credit Card", None, 41.95, None, seconds=400),  # no company, no area
    row(30.0, 7.0, 0, "Cash", "A", None, 77, seconds=500),  # no coordinates
    row(15.0, 0.0, 12, "Credit Card", "B", 42.00, 1, seconds=600),
]


def to_example(r: dict) -> bytes:
    feats = {}
    for k, v in r.items():
        if isinstance(v, str):
            feats[k] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
        elif isinstance(v, int):
            feats[k] = tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
        else:
            feats[k] = tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    """Run Transform's analyze+transform on ROWS; return (rows out, transform output dir)."""
    tmp = tmp_path_factory.mktemp("tft")
    schema = load_schema(str(SCHEMA_PATH))
    metadata = tft.DatasetMetadata(schema)
    spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    # TFT's instance-dict format: a list per feature, empty when the feature is absent.
    instances = [{name: [r[name]] if name in r else [] for name in spec} for r in ROWS]
    out_dir = str(tmp / "transform_output")
    with beam.Pipeline(options=BEAM_OPTIONS) as p, tft_beam.Context(temp_dir=str(tmp / "tmp")):
        raw = p | beam.Create(instances)
        (data, _), transform_fn = (raw, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing_fn(inputs, {PLAN_KEY: PLAN.to_json()})
        )
        _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
        _ = metadata | tft_beam.WriteMetadata(f"{out_dir}/{tft.TFTransformOutput.RAW_METADATA_DIR}", p)
        _ = (
            data
            | beam.Map(lambda d: json.dumps({k: np.asarray(v).tolist() for k, v in d.items()}, sort_keys=True))
            | beam.io.WriteToText(str(tmp / "rows"), shard_name_template="")
        )
    with open(tmp / "rows") as f:
        rows = [json.loads(line) for line in f]
    # Beam may reorder; key rows by the (unique) raw fare+hour via the label/hour columns.
    return rows, out_dir


def in_row_order(rows):
    return sorted(rows, key=lambda d: d[KEY["trip_seconds"]])


def test_label_is_big_tip(transformed):
    rows, _ = transformed
    assert [r[LABEL_KEY] for r in in_row_order(rows)] == [1, 0, 0, 1, 1, 0]


def test_fare_is_z_scored(transformed):
    rows, _ = transformed
    fares = np.array([r[KEY["fare"]] for r in in_row_order(rows)])
    assert fares.mean() == pytest.approx(0.0, abs=1e-5)
    assert fares.std() == pytest.approx(1.0, abs=1e-3)
    assert fares[4] == pytest.approx(fares.max())  # fare 30


def test_vocabulary_buckets_and_missing_values(transformed):
    rows = in_row_order(transformed[0])
    # "Credit Card" (4 rows) is more frequent than "Cash" (2): it gets id 0.
    assert [r[KEY["payment_type"]] for r in rows] == [0, 0, 1, 0, 1, 0]
    # Missing coordinates get the extra "missing" bucket, and the missing indicator.
    assert rows[4][KEY["pickup_latitude"]] == BUCKETS
    assert 0 <= rows[0][KEY["pickup_latitude"]] < BUCKETS
    assert [r["pickup_latitude_missing_xf"] for r in rows] == [0, 0, 0, 0, 1, 0]
    # Community areas are categories: the same id for the same area, a missing one flagged.
    areas = [r[KEY["pickup_community_area"]] for r in rows]
    assert len({areas[i] for i in (0, 1, 2, 4, 5)}) == 5
    assert rows[3]["pickup_community_area_missing_xf"] == 1
    # A missing company is flagged too; required features have no indicator.
    assert [r["company_missing_xf"] for r in rows] == [0, 0, 0, 1, 0, 0]
    assert "fare_missing_xf" not in rows[0]


def taxi_model(out_dir, hidden_units=(8,)):
    tf_transform_output = tft.TFTransformOutput(out_dir)
    return build_keras_model(PLAN, category_sizes(PLAN, tf_transform_output), hidden_units=hidden_units)


def test_model_output_shape_and_range(transformed):
    model = taxi_model(transformed[1])
    batch = {inp.name: tf.zeros([4, 1], dtype=inp.dtype) for inp in model.inputs}
    out = model(batch)
    assert out.shape == (4, 1)
    assert bool(tf.reduce_all((out >= 0) & (out <= 1)))


def test_saved_model_signatures(transformed, tmp_path):
    _, out_dir = transformed
    tf_transform_output = tft.TFTransformOutput(out_dir)
    model = taxi_model(out_dir)
    tf.saved_model.save(model, str(tmp_path / "m"), signatures=serving_signatures(model, tf_transform_output, PLAN))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    assert {"serving_default", "classification", "transform_features"} <= set(loaded.signatures)

    # Serving: no label source in the request, nor the columns the model does not read.
    sent = {f.name for f in PLAN.features}
    without_label = [to_example({k: v for k, v in r.items() if k in sent}) for r in ROWS]
    probs = loaded.signatures["serving_default"](examples=tf.constant(without_label))["probabilities"]
    assert probs.shape == (len(ROWS), 1)
    assert bool(tf.reduce_all((probs >= 0) & (probs <= 1)))

    # Classification (TF Serving's Classify: one input named "inputs"): classes "0"/"1"
    # with scores 1-p and p.
    classified = loaded.signatures["classification"](inputs=tf.constant(without_label))
    assert classified["classes"].numpy().tolist() == [[b"0", b"1"]] * len(ROWS)
    np.testing.assert_allclose(classified["scores"].numpy()[:, 1], probs.numpy()[:, 0], atol=1e-7)
    np.testing.assert_allclose(classified["scores"].numpy().sum(axis=1), 1.0, atol=1e-6)

    # The export is what TF Serving's Predict and Classify accept (serving/signatures.py).
    from serving.signatures import check_exported_signatures

    check_exported_signatures(str(tmp_path / "m"))

    # TFMA's signature yields the label from full examples.
    feats = loaded.signatures["transform_features"](examples=tf.constant([to_example(r) for r in ROWS]))
    assert sorted(feats[LABEL_KEY].numpy().tolist()) == [0, 0, 0, 1, 1, 1]


def test_training_input_is_raw_examples_through_the_transform_graph(transformed, tmp_path):
    """The Trainer reads raw examples (Transform writes no transformed copy) and applies
    the analysed graph: the model gets exactly its inputs, and the label."""
    from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
    from tfx_bsl.tfxio import tf_example_record

    from modeling.trainer import _dataset
    from tests.taxi_sample import write_examples

    _, out_dir = transformed
    write_examples([to_example(r) for r in ROWS], tmp_path / "raw.tfrecord.gz")

    def factory(files, options, schema):
        return tf_example_record.TFExampleRecord(file_pattern=files, schema=schema).TensorFlowDataset(options)

    fn_args = FnArgs(
        data_accessor=DataAccessor(tf_dataset_factory=factory, record_batch_factory=None, data_view_decode_fn=None)
    )
    features, label = next(
        iter(_dataset(fn_args, [str(tmp_path / "raw.tfrecord.gz")], tft.TFTransformOutput(out_dir), len(ROWS), PLAN))
    )
    model = taxi_model(out_dir)
    assert set(features) == {inp.name for inp in model.inputs}
    assert sorted(np.asarray(label).ravel().tolist()) == [0, 0, 0, 1, 1, 1]
    assert model(features).shape == (len(ROWS), 1)
