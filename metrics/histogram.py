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
"""

from __future__ import annotations

import math

from tensorflow_model_analysis.metrics import (
    binary_confusion_matrices,
    calibration,
    calibration_histogram,
    metric_types,
    metric_util,
)
from tensorflow_model_analysis.metrics import confusion_matrix_metrics as cm

BUCKET_WIDTH = 1.0 / calibration_histogram.DEFAULT_NUM_BUCKETS
# TFMA looks a class name up in its own registry before it reads the module, so these
# classes need names of their own: TFMA's name + SUFFIX.
SUFFIX = "FromHistogram"


class _FromHistogram:
    """Mixin for a TFMA ConfusionMatrixMetric: same key and value, histogram-derived matrices."""

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
        if top_k is not None or class_id is not None or num_thresholds is not None:
            raise ValueError(f"{type(self).__name__}: binary metrics at explicit thresholds only")
        sub_key = cm._validate_and_update_sub_key(name, model_name, output_name, sub_key, top_k, class_id)
        key = metric_key or metric_types.MetricKey(
            name=name,
            model_name=model_name,
            output_name=output_name,
            sub_key=sub_key,
            example_weighted=example_weighted,
            aggregation_type=aggregation_type,
        )
        if thresholds is None:
            thresholds = [self._default_threshold()]
        elif isinstance(thresholds, float):
            thresholds = [thresholds]
        # TFMA splits the histogram at t + 1e-7, which puts the bucket [t, t + 1e-4) below
        # t: predictions just above t would count as negative. Splitting one bucket lower
        # keeps them positive (and moves only exact ties, to positive).
        computations = binary_confusion_matrices.binary_confusion_matrices(
            thresholds=[t - BUCKET_WIDTH for t in thresholds],
            use_histogram=True,
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
        # The very call binary_confusion_matrices makes, so TFMA computes the histogram once.
        found = calibration_histogram.calibration_histogram(
            eval_config=eval_config,
            num_buckets=None,
            model_name=model_name,
            output_name=output_name,
            preprocessors=None,
            sub_key=sub_key,
            aggregation_type=aggregation_type,
            class_weights=class_weights,
            example_weighted=example_weighted,
        )
        histogram_key = found[-1].keys[-1]

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
