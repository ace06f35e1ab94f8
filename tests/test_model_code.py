"""preprocessing_fn on a few hand-made rows through real tf.Transform, and the model's
shape and serving signatures built on that transform."""

from __future__ import annotations

import json

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import schema_utils

from components import features as F
from components.model import build_keras_model, serving_signatures
from components.preprocessing import preprocessing_fn
from components.schema import load_schema
from conftest import SCHEMA_PATH

BEAM_OPTIONS = beam.options.pipeline_options.PipelineOptions(
    ["--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"])


def row(fare, tips, hour, payment, company=None, lat=None, area=None, miles=1.0, seconds=600):
    r = {"fare": fare, "tips": tips, "trip_start_hour": hour, "trip_start_day": 3,
         "trip_start_month": 5, "trip_start_timestamp": 1400000000, "payment_type": payment,
         "trip_miles": miles, "trip_seconds": seconds}
    if company is not None:
        r["company"] = company
    if lat is not None:
        r.update(pickup_latitude=lat, dropoff_latitude=lat, pickup_longitude=-87.6, dropoff_longitude=-87.6)
    if area is not None:
        r.update(pickup_community_area=area, dropoff_community_area=area)
    return r


ROWS = [
    row(10.0, 3.0, 8, "Credit Card", "A", 41.80, 8),     # big tipper (30%)
    row(10.0, 1.0, 9, "Credit Card", "A", 41.85, 99),    # 10%: not; area 99 out of range
    row(20.0, 0.0, 17, "Cash", "B", 41.90, 32),
    row(5.0, 2.0, 23, "Credit Card", None, 41.95, None),  # no company, no area
    row(30.0, 7.0, 0, "Cash", "A", None, 77),             # no coordinates
    row(15.0, 0.0, 12, "Credit Card", "B", 42.00, 1),
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
        (data, _), transform_fn = (raw, metadata) | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
        _ = metadata | tft_beam.WriteMetadata(f"{out_dir}/{tft.TFTransformOutput.RAW_METADATA_DIR}", p)
        _ = (data
             | beam.Map(lambda d: json.dumps({k: np.asarray(v).tolist() for k, v in d.items()}, sort_keys=True))
             | beam.io.WriteToText(str(tmp / "rows"), shard_name_template=""))
    with open(tmp / "rows") as f:
        rows = [json.loads(line) for line in f]
    # Beam may reorder; key rows by the (unique) raw fare+hour via the label/hour columns.
    return sorted(rows, key=lambda d: d[F.transformed_name("trip_start_hour")]), out_dir


def _by_hour(rows, hour):
    return next(r for r in rows if r[F.transformed_name("trip_start_hour")] == hour)


def test_label_is_big_tip(transformed):
    rows, _ = transformed
    labels = {r[F.transformed_name("trip_start_hour")]: r[F.LABEL_XF] for r in rows}
    assert labels == {8: 1, 9: 0, 17: 0, 23: 1, 0: 1, 12: 0}


def test_fare_is_z_scored(transformed):
    rows, _ = transformed
    fares = np.array([r[F.transformed_name("fare")] for r in rows])
    assert fares.mean() == pytest.approx(0.0, abs=1e-5)
    assert fares.std() == pytest.approx(1.0, abs=1e-3)
    assert _by_hour(rows, 0)[F.transformed_name("fare")] == pytest.approx(fares.max())  # fare 30


def test_vocabulary_and_missing_values(transformed):
    rows, _ = transformed
    # "Credit Card" (4 rows) is more frequent than "Cash" (2): it gets id 0.
    assert _by_hour(rows, 8)[F.transformed_name("payment_type")] == 0
    assert _by_hour(rows, 17)[F.transformed_name("payment_type")] == 1
    # Missing coordinates get the extra "missing" bucket; present ones a real bucket.
    assert _by_hour(rows, 0)[F.transformed_name("pickup_latitude")] == F.FEATURE_BUCKET_COUNT
    assert 0 <= _by_hour(rows, 8)[F.transformed_name("pickup_latitude")] < F.FEATURE_BUCKET_COUNT
    # Out-of-range and missing community areas fall back to id 0; valid ones pass through.
    assert _by_hour(rows, 9)[F.transformed_name("pickup_community_area")] == 0
    assert _by_hour(rows, 23)[F.transformed_name("pickup_community_area")] == 0
    assert _by_hour(rows, 17)[F.transformed_name("pickup_community_area")] == 32
    assert _by_hour(rows, 17)[F.transformed_name("trip_start_hour")] == 17


def test_model_output_shape_and_range():
    model = build_keras_model(hidden_units=(8,))
    batch = {inp.name: tf.zeros([4, 1], dtype=inp.dtype) for inp in model.inputs}
    out = model(batch)
    assert out.shape == (4, 1)
    assert bool(tf.reduce_all((out >= 0) & (out <= 1)))


def test_saved_model_signatures(transformed, tmp_path):
    _, out_dir = transformed
    tf_transform_output = tft.TFTransformOutput(out_dir)
    model = build_keras_model(hidden_units=(8,))
    tf.saved_model.save(model, str(tmp_path / "m"), signatures=serving_signatures(model, tf_transform_output))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    assert {"serving_default", "classification", "transform_features"} <= set(loaded.signatures)

    # Serving: no label in the request, probabilities out.
    without_label = [to_example({k: v for k, v in r.items() if k != F.LABEL_KEY}) for r in ROWS]
    probs = loaded.signatures["serving_default"](examples=tf.constant(without_label))["probabilities"]
    assert probs.shape == (len(ROWS), 1)
    assert bool(tf.reduce_all((probs >= 0) & (probs <= 1)))

    # Classification (TF Serving's Classify, which feeds the one input named "inputs"):
    # classes "0"/"1" with scores 1-p and p.
    classified = loaded.signatures["classification"](inputs=tf.constant(without_label))
    assert classified["classes"].numpy().tolist() == [[b"0", b"1"]] * len(ROWS)
    np.testing.assert_allclose(classified["scores"].numpy()[:, 1], probs.numpy()[:, 0], atol=1e-7)
    np.testing.assert_allclose(classified["scores"].numpy().sum(axis=1), 1.0, atol=1e-6)

    # The export is what TF Serving's Predict and Classify accept (serving/signatures.py).
    from serving.signatures import check_exported_signatures

    check_exported_signatures(str(tmp_path / "m"))

    # TFMA's signature yields the label from full examples.
    feats = loaded.signatures["transform_features"](examples=tf.constant([to_example(r) for r in ROWS]))
    assert sorted(feats[F.LABEL_XF].numpy().tolist()) == [0, 0, 0, 1, 1, 1]


def test_training_input_is_raw_examples_through_the_transform_graph(transformed, tmp_path):
    """The Trainer reads raw examples (Transform writes no transformed copy) and applies
    the analysed graph: the model gets exactly its inputs, and the label."""
    from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
    from tfx_bsl.tfxio import tf_example_record

    from components.trainer import _dataset
    from conftest import write_examples

    _, out_dir = transformed
    write_examples([to_example(r) for r in ROWS], tmp_path / "raw.tfrecord.gz")

    def factory(files, options, schema):
        return tf_example_record.TFExampleRecord(file_pattern=files, schema=schema).TensorFlowDataset(options)

    fn_args = FnArgs(data_accessor=DataAccessor(tf_dataset_factory=factory, record_batch_factory=None,
                                                data_view_decode_fn=None))
    features, label = next(iter(_dataset(fn_args, [str(tmp_path / "raw.tfrecord.gz")],
                                         tft.TFTransformOutput(out_dir), batch_size=len(ROWS))))
    model = build_keras_model(hidden_units=(8,))
    assert set(features) == {inp.name for inp in model.inputs}
    assert sorted(np.asarray(label).ravel().tolist()) == [0, 0, 0, 1, 1, 1]
    assert model(features).shape == (len(ROWS), 1)
