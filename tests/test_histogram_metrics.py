"""The histogram-derived metrics give TFMA's own values, slice by slice, under TFMA's names."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from tensorflow_model_analysis.proto import config_pb2 as tfma_config

from metrics import histogram as histogram_metrics
from pipeline import evaluation
from pipeline.config import ConfigError, load_config
from tests.taxi_sample import PROJECT_DIR

THRESHOLDS = [0.25, 0.5, 0.75]
CLASSES = (
    "AUC",
    "AUCPrecisionRecall",
    "BinaryAccuracy",
    "Precision",
    "Recall",
    "MeanLabel",
    "MeanPrediction",
    "Calibration",
    *evaluation.FAIRNESS_METRICS,
)


def _frame(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    prediction = rng.random(n)
    # Just either side of each threshold (inside one histogram bucket) and at the ends:
    # where a histogram could put a prediction on the wrong side.
    near = [t + d for t in THRESHOLDS for d in (-1e-6, 1e-6, 5e-5, 9.9e-5)] + [0.0, 1.0]
    prediction[: len(near) * 5] = np.repeat(near, 5)
    label = (rng.random(n) < prediction).astype(float)
    group = rng.choice(["a", "b", "c", "tiny"], size=n, p=[0.5, 0.3, 0.199, 0.001])
    return pd.DataFrame({"label": label, "prediction": prediction, "group": group})


def _metrics(frame, configs):
    import tensorflow_model_analysis as tfma

    config = tfma_config.EvalConfig(
        model_specs=[tfma_config.ModelSpec(label_key="label", prediction_key="prediction")],
        slicing_specs=[tfma_config.SlicingSpec(), tfma_config.SlicingSpec(feature_keys=["group"])],
        metrics_specs=[tfma_config.MetricsSpec(metrics=configs)],
    )
    result = tfma.analyze_raw_data(frame, config)
    return {key: values[""][""] for key, values in result.slicing_metrics}


@pytest.mark.slow
def test_same_values_as_tfma_on_every_slice():
    frame = _frame()
    config = json.dumps({"thresholds": THRESHOLDS})

    def configs(histogram: bool):
        made = []
        for name in CLASSES:
            kwargs = {"config": config} if name in evaluation.FAIRNESS_METRICS else {}
            made.append(
                evaluation.from_histogram(name, **kwargs)
                if histogram
                else tfma_config.MetricConfig(class_name=name, **kwargs)
            )
        return made

    ours, theirs = _metrics(frame, configs(True)), _metrics(frame, configs(False))
    assert ours.keys() == theirs.keys() and len(ours) == 5  # overall + 4 groups
    for slice_key, expected in theirs.items():
        assert ours[slice_key].keys() == expected.keys(), slice_key
        for name, value in expected.items():
            got = ours[slice_key][name]
            if "doubleValue" in value:
                a, b = float(got["doubleValue"]), float(value["doubleValue"])
                assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12), (
                    slice_key,
                    name,
                    a,
                    b,
                )
            else:
                assert got == value, (slice_key, name)


def test_a_prediction_equal_to_the_threshold_counts_as_positive():
    frame = pd.DataFrame({"label": [0.0, 1.0], "prediction": [0.5, 0.5], "group": ["a", "a"]})
    values = _metrics(frame, [evaluation.from_histogram("Recall")])[()]
    assert float(values["recall"]["doubleValue"]) == 1.0  # TFMA's Recall says 0.0 (> 0.5)


def test_thresholds_off_the_histogram_grid_are_refused():
    with pytest.raises(ConfigError, match="multiple of"):
        load_config(
            PROJECT_DIR / "configs" / "local.toml", {"fairness_thresholds": "[0.3, 0.12345]"}, base_dir=PROJECT_DIR
        )


def test_config_step_is_the_histogram_bucket_width():
    from pipeline.config import THRESHOLD_STEP

    assert THRESHOLD_STEP == pytest.approx(histogram_metrics.BUCKET_WIDTH)


@pytest.mark.parametrize(
    "thresholds",
    [
        [0.5 - histogram_metrics.BUCKET_WIDTH],
        [t - histogram_metrics.BUCKET_WIDTH for t in THRESHOLDS],
        "auc",  # TFMA's 10,000 curve thresholds, with their -1e-7 and 1 + 1e-7 fence posts
        "plot",  # 1,000
    ],
)
def test_matrices_are_tfma_own_floats(thresholds):
    """Bucket for bucket the arithmetic of TFMA's histogram path, so the very same floats:
    sparse histograms with the -inf / +inf buckets, fractional weights, an empty one."""
    from tensorflow_model_analysis.metrics import binary_confusion_matrices as bcm
    from tensorflow_model_analysis.metrics import calibration_histogram as ch

    if thresholds == "auc":
        thresholds = bcm._interpolated_thresholds(bcm.DEFAULT_NUM_THRESHOLDS)
    elif thresholds == "plot":
        thresholds = bcm._interpolated_thresholds(1000)
    rng = np.random.default_rng(7)
    for n, weighted in ((0, False), (1, False), (50, False), (4000, True), (20000, False)):
        ids = sorted(
            set(rng.integers(0, ch.DEFAULT_NUM_BUCKETS + 2, size=n).tolist()) | ({0, 10001} if n > 1 else set())
        )
        histogram = []
        for i in ids:
            examples = float(rng.integers(1, 20)) * (rng.random() + 0.5 if weighted else 1.0)
            labels = examples * (rng.random() if weighted else float(rng.integers(0, 2)))
            histogram.append(ch.Bucket(i, labels, labels * 0.5, examples))
        # TFMA's own steps (binary_confusion_matrices.py, result() of the use_histogram path)
        fence = [t + bcm._EPSILON if t != 0 else t for t in thresholds]
        if thresholds[0] >= 0:
            fence = [-bcm._EPSILON] + fence
        if thresholds[-1] < 1.0:
            fence = fence + [1.0 + bcm._EPSILON]
        expected = bcm._histogram_to_binary_confusion_matrices(thresholds, ch.rebin(fence, histogram))
        got = histogram_metrics.matrices_from_histogram(thresholds, histogram)
        for field in ("thresholds", "tp", "tn", "fp", "fn"):
            assert list(getattr(got, field)) == list(getattr(expected, field)), (n, field)
