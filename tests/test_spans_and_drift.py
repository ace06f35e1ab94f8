"""Continuous training's units: span selection and the window (TFX's own span matching),
the drift measures (TFDV's comparators) and the configuration's rules."""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError, glob_pattern, has_spans, load_config
from tests.taxi_sample import PROJECT_DIR, TAXI_TOML


def _touch(base, *names):
    for name in names:
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_spans_by_date_and_by_number(tmp_path):
    from components.example_gen import spans_of

    _touch(tmp_path, "2026-11-01/a.gz", "2026-11-01/b.gz", "2026-11-02/a.gz", "2026-11-04/a.gz", "notes.txt")
    spans = spans_of(str(tmp_path), "{YYYY}-{MM}-{DD}/*.gz")
    # TFX's date spans: days since 1970-01-01.
    assert sorted(spans) == [20758, 20759, 20761]
    assert [p.rsplit("/", 2)[-2:] for p in spans[20758]] == [["2026-11-01", "a.gz"], ["2026-11-01", "b.gz"]]

    _touch(tmp_path, "span-3/x", "span-12/x", "span-7/x")
    assert sorted(spans_of(str(tmp_path), "span-{SPAN}/*")) == [3, 7, 12]


def test_window_takes_the_last_spans_present_up_to_the_selected_one():
    from components.example_gen import ExampleGenError, window_of

    spans = {s: [f"f{s}"] for s in (1, 2, 4, 5, 9)}
    assert window_of(spans, 9, 3) == ([4, 5, 9], 5)
    assert window_of(spans, 5, 3) == ([2, 4, 5], 4)  # a named older span: nothing newer
    assert window_of(spans, 2, 5) == ([1, 2], 1)
    assert window_of(spans, 1, 1) == ([1], None)  # the first span has no previous one
    assert window_of(spans, 4, 1) == ([4], 2)  # the previous span is read even outside the window
    with pytest.raises(ExampleGenError, match=r"span 3 has no input files \(spans present: \[1, 2, 4, 5, 9\]\)"):
        window_of(spans, 3, 2)


def test_window_config_travels_through_exec_properties():
    from tfx.utils import proto_utils

    from components.example_gen import make_window_config, window_config

    config = make_window_config("{YYYY}{MM}{DD}/*", 7)
    assert window_config(proto_utils.proto_to_json(config)) == ("{YYYY}{MM}{DD}/*", 7)
    assert window_config(None) is None


def test_span_patterns_in_the_configuration():
    assert has_spans("{YYYY}-{MM}-{DD}/*") and has_spans("span-{SPAN:4}/*") and not has_spans("*.gz")
    assert glob_pattern("span-{SPAN:4}/v{VERSION}/*") == "span-*/v*/*"
    cfg = load_config(
        TAXI_TOML,
        overrides={"input_pattern": "{YYYY}{MM}{DD}/*", "window_spans": "3", "span": "20400"},
        base_dir=PROJECT_DIR,
    )
    assert (cfg.window_spans, cfg.span) == (3, 20400)
    with pytest.raises(ConfigError, match=r"^input_pattern: span and window_spans need a pattern"):
        load_config(TAXI_TOML, overrides={"window_spans": "2"}, base_dir=PROJECT_DIR)
    with pytest.raises(ConfigError, match=r"^window_spans: must be >= 1"):
        load_config(TAXI_TOML, overrides={"input_pattern": "{SPAN}/*", "window_spans": "0"}, base_dir=PROJECT_DIR)
    with pytest.raises(ConfigError, match=r"^drift_thresholds.fare: must be in \(0, 1\]"):
        load_config(TAXI_TOML, overrides={"drift_thresholds": "{fare = 2}"}, base_dir=PROJECT_DIR)
    with pytest.raises(ConfigError, match=r"^drift_thresholds: 'nope' is not a feature"):
        load_config(TAXI_TOML, overrides={"drift_thresholds": "{nope = 0.1}"}, base_dir=PROJECT_DIR)


def _stats(rows: dict):
    import pandas as pd
    import tensorflow_data_validation as tfdv

    return tfdv.generate_statistics_from_dataframe(pd.DataFrame(rows))


def _schema():
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    schema.feature.add(name="kind", type=schema_pb2.BYTES)
    schema.feature.add(name="miles", type=schema_pb2.FLOAT)
    schema.feature.add(name="stamp", type=schema_pb2.FLOAT)
    return schema


def test_drift_measures_are_tfdvs_and_name_the_features():
    from components.drift import JENSEN_SHANNON, L_INFINITY, compare, describe

    before = _stats(
        {
            "kind": ["a"] * 50 + ["b"] * 50,
            "miles": [float(i % 10) for i in range(100)],
            "stamp": [float(i) for i in range(100)],
        }
    )
    same = _stats(
        {
            "kind": ["a"] * 48 + ["b"] * 52,
            "miles": [float(i % 10) for i in range(100)],
            "stamp": [float(i + 1000) for i in range(100)],
        }
    )
    moved = _stats(
        {
            "kind": ["a"] * 90 + ["b"] * 10,
            "miles": [float(i % 10) * 5 + 40 for i in range(100)],
            "stamp": [float(i) for i in range(100)],
        }
    )
    features = ["kind", "miles"]  # "stamp" is not a model feature: never compared

    rows = compare(same, before, _schema(), features, 0.1, 0.1, {})
    assert [(r["feature"], r["measure"], r["drifted"]) for r in rows] == [
        ("kind", L_INFINITY, False),
        ("miles", JENSEN_SHANNON, False),
    ]
    assert rows[0]["value"] == pytest.approx(0.02)  # max |0.48 - 0.50|, |0.52 - 0.50|

    rows = compare(moved, before, _schema(), features, 0.1, 0.1, {})
    assert [r["drifted"] for r in rows] == [True, True]
    assert rows[0]["value"] == pytest.approx(0.4)
    assert describe(rows).startswith("kind (L-infinity distance 0.400 > 0.1), miles (Jensen-Shannon divergence ")

    # A per-feature threshold wins over the default; 0 leaves a kind of feature unchecked.
    rows = compare(moved, before, _schema(), features, 0.0, 0.1, {"kind": 0.5})
    assert [(r["feature"], r["threshold"], r["drifted"]) for r in rows] == [("kind", 0.5, False), ("miles", 0.1, True)]
    assert compare(moved, before, _schema(), features, 0.0, 0.0, {}) == []

    # The schema's own drift_comparator counts when the configuration gives none.
    schema = _schema()
    schema.feature[0].drift_comparator.infinity_norm.threshold = 0.3
    rows = compare(moved, before, schema, ["kind"], 0.0, 0.0, {})
    assert [(r["feature"], r["threshold"], r["drifted"]) for r in rows] == [("kind", 0.3, True)]
