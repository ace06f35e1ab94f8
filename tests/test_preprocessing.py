"""The generated preprocessing_fn on hand-made rows, through real tf.Transform: awkward
column names, missing and non-finite values, and the label of each task."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import schema_utils

from modeling.preprocessing import PLAN_KEY, missing_key, preprocessing_fn
from modeling.roles import LABEL_KEY, make_plan

SCHEMA = text_format.Parse(
    """
feature { name: "row id" type: INT presence { min_fraction: 1 } shape { dim { size: 1 } } }
feature { name: "trip miles" type: FLOAT presence { min_count: 1 } value_count { min: 1 max: 1 } }
feature { name: "zone.id" type: INT int_domain { min: 1 max: 9 is_categorical: true }
          presence { min_fraction: 1 } shape { dim { size: 1 } } }
feature { name: "3rd-party" type: BYTES presence { min_count: 1 } value_count { min: 1 max: 1 } }
feature { name: "kind" type: BYTES domain: "kind" presence { min_fraction: 1 } shape { dim { size: 1 } } }
feature { name: "price" type: FLOAT presence { min_fraction: 1 } shape { dim { size: 1 } } }
string_domain { name: "kind" value: "cat" value: "dog" value: "emu" }
""",
    schema_pb2.Schema(),
)

NAN = float("nan")
# row id, trip miles (None: absent), zone.id, 3rd-party (None: absent), kind, price
ROWS = [
    (0, 1.0, 3, "a", "cat", 10.5),
    (1, 3.0, 3, "b", "dog", 20.0),
    (2, None, 7, "a", "emu", 30.0),
    (3, 5.0, 9, None, "dog", 40.0),
    (4, NAN, 7, "a", "yak", 50.0),  # NaN miles count as absent; "yak" is no known class
]
COLUMNS = ("row id", "trip miles", "zone.id", "3rd-party", "kind", "price")


def plans():
    common = dict(features=["row id", "trip miles", "zone.id", "3rd-party"], roles={"row id": "numeric"})
    return {
        "m": make_plan(SCHEMA, label="kind", **common),
        "r": make_plan(SCHEMA, label="price", **common),
        "b": make_plan(SCHEMA, label="kind", task="binary", positive_class="dog", **common),
    }


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    """Rows out of tf.Transform's analyze-and-transform, by row id; the three plans' outputs
    side by side under the prefixes m/, r/, b/."""
    tmp = tmp_path_factory.mktemp("tft")
    spec = schema_utils.schema_as_feature_spec(SCHEMA).feature_spec
    instances = [{c: ([v] if v is not None else []) for c, v in zip(COLUMNS, row)} for row in ROWS]
    assert set(instances[0]) == set(spec)
    configs = {p: {PLAN_KEY: plan.to_json()} for p, plan in plans().items()}

    def fn(inputs):
        out = {}
        for prefix, config in configs.items():
            out.update({f"{prefix}/{k}": v for k, v in preprocessing_fn(inputs, config).items()})
        return out

    with tft_beam.Context(temp_dir=str(tmp)):
        (rows, _), _ = (instances, tft.DatasetMetadata(SCHEMA)) | tft_beam.AnalyzeAndTransformDataset(fn)
    row_key = f"m/{key('row id')}"
    return dict(enumerate(sorted(rows, key=lambda r: r[row_key])))


def key(name):
    return next(f.key for f in plans()["m"].features if f.name == name)


def test_numeric_is_z_scored_over_present_values_and_absent_is_the_mean(transformed):
    miles = [transformed[i][f"m/{key('trip miles')}"] for i in range(5)]
    present = np.array([1.0, 3.0, 5.0])
    expected = (present - present.mean()) / present.std()
    np.testing.assert_allclose([miles[0], miles[1], miles[3]], expected, rtol=1e-5)
    assert miles[2] == 0.0 and miles[4] == 0.0  # absent, and NaN
    indicator = [transformed[i][f"m/{missing_key(key('trip miles'))}"] for i in range(5)]
    assert indicator == [0, 0, 1, 0, 1]


def test_categories_get_one_id_per_value(transformed):
    zones = [transformed[i][f"m/{key('zone.id')}"] for i in range(5)]
    assert zones[0] == zones[1] and zones[2] == zones[4] and len({zones[0], zones[2], zones[3]}) == 3
    # 7 and 3 appear twice, 9 once: the vocabulary is by frequency, so 9 has the last id.
    assert zones[3] == 2
    party = [transformed[i][f"m/{key('3rd-party')}"] for i in range(5)]
    assert party[0] == party[2] == party[4] == 0 and party[1] != 0  # "a" is most frequent
    assert [transformed[i][f"m/{missing_key(key('3rd-party'))}"] for i in range(5)] == [0, 0, 0, 1, 0]


def test_labels_per_task(transformed):
    assert [transformed[i][f"m/{LABEL_KEY}"] for i in range(5)] == [0, 1, 2, 1, -1]  # domain order
    assert [transformed[i][f"b/{LABEL_KEY}"] for i in range(5)] == [0, 1, 0, 1, 0]  # dog vs the rest
    prices = [transformed[i][f"r/{LABEL_KEY}"] for i in range(5)]
    assert prices == pytest.approx([10.5, 20.0, 30.0, 40.0, 50.0])


def test_transformed_names_are_valid_keras_names():
    import re

    for plan in plans().values():
        for f in plan.features:
            assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", f.key), f.key
