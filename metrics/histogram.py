"""TFMA's threshold and mean metrics, derived from the prediction histogram TFMA builds anyway.

Why: for an explicit threshold list, TFMA keeps a separate confusion-matrix accumulator
that it updates in Python for every example and every slice, and one more for the sums
behind mean label, mean prediction and calibration. Ours had three such accumulators
(0.5 for precision, recall and accuracy; the fairness thresholds; the sums), and profiled
on 5k-50k eval examples they were two thirds of the per-example metric work. The AUC already
accumulates a 10,000-bucket calibration histogram per slice; TFMA can derive confusion
matrices at any threshold from it (`use_histogram=True`), and the sums are the histogram's
totals, both once per slice instead of once per example.

One difference, from the histogram's bucket edges (multiples of 1e-4): a prediction equal
to a threshold counts as positive here, as negative in TFMA (>= instead of >); every other
prediction lands on the same side (each threshold is matched to the bucket edge at it, so
pipeline/config.py accepts only thresholds on an edge). The sums are exact. Metric names
and keys are TFMA's, so gates, reports and notebooks read them unchanged.

The matrices themselves (for these metrics and for AUC / AUCPrecisionRecall, whose 10,000
curve thresholds TFMA also derives from this histogram) come from matrices_from_histogram():
TFMA's own arithmetic in numpy instead of Python loops over 10,000 buckets per slice and
model. The AUCs are TFMA's, to the last bit (tests/test_histogram_metrics.py).
"""

from __future__ import annotations

import math

import numpy as np
from tensorflow_model_analysis.metrics import (
    binary_confusion_matrices,
    calibration,
    calibration_histogram,
    metric_types,
    metric_util,
)
from tensorflow_model_analysis.metrics import confusion_matrix_metrics as cm

BUCKET_COUNT = calibration_histogram.DEFAULT_NUM_BUCKETS
BUCKET_WIDTH = 1.0 / BUCKET_COUNT
_EPSILON = binary_confusion_matrices._EPSILON
# TFMA looks a class name up in its own registry before it reads the module, so these
# classes need names of their own: TFMA's name + SUFFIX.
SUFFIX = "FromHistogram"


def matrices_from_histogram(thresholds: list[float], histogram, num_buckets: int = BUCKET_COUNT):
    """TFMA's confusion matrices at `thresholds` from a calibration histogram, in numpy.

    The same arithmetic as TFMA 0.52's use_histogram path (binary_confusion_matrices.py:
    the fence posts, `calibration_histogram.rebin`, `_histogram_to_binary_confusion_matrices`),
    bucket for bucket and in the same order of addition, so the values are the same floats.
    Why: TFMA's version loops in Python over every histogram bucket and every threshold,
    once per slice, model and threshold list; profiled on 15k rows (95 slices) these loops
    were the largest part of the Evaluator's CPU time after the per-example work.
    """
    rebin_thresholds = [t + _EPSILON if t != 0 else t for t in thresholds]
    if thresholds[0] >= 0:
        rebin_thresholds = [-_EPSILON] + rebin_thresholds
    if thresholds[-1] < 1.0:
        rebin_thresholds = rebin_thresholds + [1.0 + _EPSILON]
    ids = np.fromiter((b.bucket_id for b in histogram), dtype=np.int64, count=len(histogram))
    labels = np.fromiter((b.weighted_labels for b in histogram), dtype=np.float64, count=len(histogram))
    examples = np.fromiter((b.weighted_examples for b in histogram), dtype=np.float64, count=len(histogram))
    # rebin(): a bucket's left edge decides where it goes; the two outer buckets are -inf, +inf.
    edge = (ids - 1) / num_buckets * 1.0 + 0.0
    edge[ids == 0] = -np.inf
    edge[ids >= num_buckets + 1] = np.inf
    n = len(rebin_thresholds)
    target = np.searchsorted(np.asarray(rebin_thresholds[1:]), edge, side="right")
    pos = np.bincount(target, weights=labels, minlength=n)[:n]
    neg = np.bincount(target, weights=examples, minlength=n)[:n] - pos
    tp = np.cumsum(pos[::-1])[::-1]
    fp = np.cumsum(neg[::-1])[::-1]
    fn = np.concatenate([[0.0], np.cumsum(pos)[:-1]])
    tn = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    offset = 1 if (thresholds[0] >= 0 or len(thresholds) == 1) and n > 1 else 0
    tp, fp, tn, fn = (list(map(float, a[offset : offset + len(thresholds)])) for a in (tp, fp, tn, fn))
    for i, t in enumerate(thresholds):
        if t >= 1.0 + _EPSILON:
            tp[i], fp[i], fn[i], tn[i] = 0.0, 0.0, tp[0], fp[0]
    return binary_confusion_matrices.Matrices(thresholds, tp, tn, fp, fn)


def _tfma_histogram(
    eval_config, model_name, output_name, preprocessors, sub_key, aggregation_type, class_weights, example_weighted
):
    """TFMA's histogram computations and the key of the histogram. The very call
    binary_confusion_matrices makes, so TFMA computes the histogram once for all of them."""
    computations = calibration_histogram.calibration_histogram(
        eval_config=eval_config,
        num_buckets=None,
        model_name=model_name,
        output_name=output_name,
        preprocessors=preprocessors,
        sub_key=sub_key,
        aggregation_type=aggregation_type,
        class_weights=class_weights,
        example_weighted=example_weighted,
    )
    return computations, computations[-1].keys[-1]


def matrices_computations(
    thresholds: list[float],
    name: str,
    eval_config=None,
    model_name="",
    output_name="",
    sub_key=None,
    aggregation_type=None,
    class_weights=None,
    example_weighted=False,
    preprocessors=None,
):
    """TFMA's histogram computation plus ours deriving the matrices from it (one per
    distinct `name`: TFMA runs a computation once per key however many metrics ask)."""
    computations, histogram_key = _tfma_histogram(
        eval_config, model_name, output_name, preprocessors, sub_key, aggregation_type, class_weights, example_weighted
    )
    key = metric_types.MetricKey(
        name=name, model_name=model_name, output_name=output_name, sub_key=sub_key, example_weighted=example_weighted
    )

    def result(metrics):
        return {key: matrices_from_histogram(thresholds, metrics[histogram_key])}

    computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
    return computations


class _FromHistogram:
    """Mixin for a TFMA confusion-matrix metric: same key and value, its matrices derived
    from the histogram by matrices_from_histogram()."""

    def _metric_computations(
        self,
        thresholds=None,
        num_thresholds=None,
        top_k=None,
        class_id=None,
        name=None,
        eval_config=None,
        model_name="",
        output_name="",
        sub_key=None,
        aggregation_type=None,
        class_weights=None,
        example_weighted=False,
        preprocessors=None,
        metric_key=None,
        **kwargs,
    ):
        if top_k is not None or class_id is not None:
            raise ValueError(f"{type(self).__name__}: binary metrics only (no top_k, class_id)")
        sub_key = cm._validate_and_update_sub_key(name, model_name, output_name, sub_key, top_k, class_id)
        key = metric_key or metric_types.MetricKey(
            name=name,
            model_name=model_name,
            output_name=output_name,
            sub_key=sub_key,
            example_weighted=example_weighted,
            aggregation_type=aggregation_type,
        )
        if num_thresholds is None and thresholds is None and self._default_threshold() is None:
            num_thresholds = binary_confusion_matrices.DEFAULT_NUM_THRESHOLDS
        if num_thresholds is not None:
            if thresholds is not None:
                raise ValueError(f"{type(self).__name__}: thresholds or num_thresholds, not both")
            # TFMA's own curve thresholds (AUC's default: 10,000), with TFMA's histogram path.
            thresholds = binary_confusion_matrices._interpolated_thresholds(num_thresholds)
            matrices_name = f"_matrices_from_histogram_{num_thresholds}"
        else:
            if thresholds is None:
                thresholds = [self._default_threshold()]
            elif isinstance(thresholds, float):
                thresholds = [thresholds]
            # TFMA splits the histogram at t + 1e-7, which puts the bucket [t, t + 1e-4) below
            # t: predictions just above t would count as negative. Splitting one bucket lower
            # keeps them positive (and moves only exact ties, to positive).
            thresholds = [t - BUCKET_WIDTH for t in thresholds]
            matrices_name = f"_matrices_from_histogram_at_{','.join(repr(t) for t in thresholds)}"
        computations = matrices_computations(
            thresholds,
            matrices_name,
            eval_config=eval_config,
            model_name=model_name,
            output_name=output_name,
            sub_key=sub_key,
            aggregation_type=aggregation_type,
            class_weights=class_weights,
            example_weighted=example_weighted,
            preprocessors=preprocessors,
        )
        matrices_key = computations[-1].keys[-1]

        def result(metrics):
            return {key: self._metric_value(key=key, matrices=metrics[matrices_key], **kwargs)}

        computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
        return computations


class AUCFromHistogram(_FromHistogram, cm.AUC):
    pass


class AUCPrecisionRecallFromHistogram(_FromHistogram, cm.AUCPrecisionRecall):
    pass


class BinaryAccuracyFromHistogram(_FromHistogram, cm.BinaryAccuracy):
    pass


class PrecisionFromHistogram(_FromHistogram, cm.Precision):
    pass


class RecallFromHistogram(_FromHistogram, cm.Recall):
    pass


class FallOutFromHistogram(_FromHistogram, cm.FallOut):
    pass


class MissRateFromHistogram(_FromHistogram, cm.MissRate):
    pass


class PredictedPositiveRateFromHistogram(_FromHistogram, cm.PredictedPositiveRate):
    pass


class FalseDiscoveryRateFromHistogram(_FromHistogram, cm.FalseDiscoveryRate):
    pass


def _histogram_ratio(numerator: str, denominator: str):
    """A TFMA computation function: sum of one bucket field over the sum of another."""

    def computations(
        name,
        eval_config=None,
        model_name="",
        output_name="",
        sub_key=None,
        aggregation_type=None,
        class_weights=None,
        example_weighted=False,
    ):
        key = metric_types.MetricKey(
            name=name,
            model_name=model_name,
            output_name=output_name,
            sub_key=sub_key,
            example_weighted=example_weighted,
        )
        found, histogram_key = _tfma_histogram(
            eval_config, model_name, output_name, None, sub_key, aggregation_type, class_weights, example_weighted
        )

        def result(metrics):
            buckets = metrics[histogram_key]
            top = sum(getattr(b, numerator) for b in buckets)
            bottom = sum(getattr(b, denominator) for b in buckets)
            return {key: top / bottom if not math.isclose(bottom, 0.0, abs_tol=1e-8) else float("nan")}

        found.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
        return found

    return metric_util.merge_per_key_computations(computations)


class MeanLabelFromHistogram(metric_types.Metric):
    def __init__(self, name: str = calibration.MEAN_LABEL_NAME):
        super().__init__(_histogram_ratio("weighted_labels", "weighted_examples"), name=name)


class MeanPredictionFromHistogram(metric_types.Metric):
    def __init__(self, name: str = calibration.MEAN_PREDICTION_NAME):
        super().__init__(_histogram_ratio("weighted_predictions", "weighted_examples"), name=name)


class CalibrationFromHistogram(metric_types.Metric):
    def __init__(self, name: str = calibration.CALIBRATION_NAME):
        super().__init__(_histogram_ratio("weighted_predictions", "weighted_labels"), name=name)
