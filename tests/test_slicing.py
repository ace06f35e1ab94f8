"""The Evaluator's slice-key step gives TFMA's own slice keys, example by example."""

from __future__ import annotations

import numpy as np
import pytest
from tensorflow_model_analysis.proto import config_pb2 as tfma
from tensorflow_model_analysis.slicer import slicer_lib as slicer

from metrics import slicing


def _examples(n=400, seed=3):
    rng = np.random.default_rng(seed)
    for i in range(n):
        raw = {
            "hour": np.array([int(rng.integers(0, 24))]),
            "payment": np.array([rng.choice([b"Cash", b"Credit Card", "Ünïcode".encode()])], dtype=object),
            "fare": np.array([float(rng.choice([1.5, np.nan, 2.25]))]),
            # several values, none, and an empty one: TFMA's own `get` answers these
            "tags": np.array([b"b", b"a", b"b"], dtype=object) if i % 3 == 0 else np.array([], dtype=object),
        }
        if i % 5 == 0:
            del raw["hour"]
        transformed = {"payment": np.array([int(rng.integers(0, 3))])} if i % 7 == 0 else None
        yield raw, transformed


SPECS = [
    tfma.SlicingSpec(),
    tfma.SlicingSpec(feature_keys=["hour"]),
    tfma.SlicingSpec(feature_keys=["payment"]),
    tfma.SlicingSpec(feature_keys=["fare"]),
    tfma.SlicingSpec(feature_keys=["tags"]),
    tfma.SlicingSpec(feature_keys=["payment", "hour"]),
    tfma.SlicingSpec(feature_values={"payment": "Cash"}),
]


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_same_slice_keys_as_tfma(spec):
    specs = [slicer.SingleSliceSpec(spec=spec)]
    for raw, transformed in _examples():
        dicts = [transformed] if transformed else []
        expected = list(slicer.get_slices_for_features_dicts(dicts, raw, specs))
        accessor = slicing._SliceAccessor(dicts, raw)
        got = [key for s in specs for key in s.generate_slices(accessor)]
        assert repr(got) == repr(expected), (raw, transformed)


def test_sql_and_cross_slices_are_refused_not_dropped():
    config = tfma.EvalConfig(slicing_specs=[tfma.SlicingSpec(slice_keys_sql="SELECT 1")])
    with pytest.raises(ValueError, match="remove module_path"):
        slicing.custom_extractors(None, config, None)


def test_features_are_pruned_to_the_slicing_columns_right_before_tfma_unbatches():
    from tensorflow_model_analysis import constants
    from tensorflow_model_analysis.extractors import unbatch_extractor

    config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(name="candidate"), tfma.ModelSpec(name="baseline", is_baseline=True)],
        slicing_specs=[
            tfma.SlicingSpec(),
            tfma.SlicingSpec(feature_keys=["hour"]),
            tfma.SlicingSpec(feature_values={"pay": "Cash"}),
        ],
    )
    stages = [e.stage_name for e in slicing.custom_extractors(None, config, None)]
    assert stages.index("ExtractSlicingColumns") + 1 == stages.index(unbatch_extractor.UNBATCH_EXTRACTOR_STAGE_NAME)

    batch = {
        constants.FEATURES_KEY: {
            "hour": np.array([1, 2]),
            "pay": np.array([b"Cash", b"x"]),
            "fare": np.array([1.0, 2.0]),
        },
        constants.TRANSFORMED_FEATURES_KEY: {
            m: {"hour": np.array([3, 4]), "fare_xf": np.array([0.1, 0.2])} for m in ("candidate", "baseline")
        },
        constants.LABELS_KEY: np.array([0, 1]),
        constants.PREDICTIONS_KEY: {m: np.array([0.2, 0.9]) for m in ("candidate", "baseline")},
        constants.INPUT_KEY: np.array([b"a", b"b"]),
    }
    pruned = slicing._prune(batch, frozenset(slicing.slicing_columns(config)), per_model=True)
    assert sorted(pruned[constants.FEATURES_KEY]) == ["hour", "pay"]
    assert all(sorted(t) == ["hour"] for t in pruned[constants.TRANSFORMED_FEATURES_KEY].values())
    assert constants.INPUT_KEY not in pruned and constants.INPUT_KEY in batch  # the input is not modified
    assert pruned[constants.LABELS_KEY] is batch[constants.LABELS_KEY]
    assert pruned[constants.PREDICTIONS_KEY] is batch[constants.PREDICTIONS_KEY]
