"""Regression metrics TFMA 0.52 lacks: RMSE, R² and a residual plot, as TFMA metrics.

Why TFMA metrics and not numbers computed afterwards: only a metric that TFMA computes is
sliced, compared with the baseline (a `_diff`), gated by a threshold and written with the
evaluation, like every other metric. TFMA's `SquaredPearsonCorrelation` is not R²: it is
the squared correlation, which forgives any linear miscalibration (predicting 2y + 5
scores 1.0); R² = 1 - SSE/SST does not.

- `root_mean_squared_error`: the square root of TFMA's own `mean_squared_error`, derived
  from the very computation MeanSquaredError makes (TFMA runs it once).
- `r2`: 1 - SSE/SST, example-weighted, SST around the weighted mean label of the slice.
  The label's mean and spread are accumulated with Welford's / Chan's updates (not sums
  of squares), so labels far from zero (prices, timestamps) lose no precision.
- `residual_plot`: mean residual (label - prediction) by prediction bin, one per slice,
  as TFMA's CalibrationHistogramBuckets (a plot type TFMA writes and loads): per bin its
  prediction range, example weight, sum of labels and sum of predictions. The bins hold
  about equal weight (20 of them); they are cut from a mergeable sketch of the
  predictions: buckets 2^s wide on a grid anchored at 0, s growing (pairs of buckets
  merging) only while more than 1,000 buckets are occupied (or a prediction near the
  float range would have no index). The result does not depend
  on the order examples arrive in or how Beam splits them (floor(floor(x/2^s)/2) ==
  floor(x/2^(s+1))). A far outlier costs one bucket, not the resolution of the rest.

Examples whose label or prediction is not finite are left out of r2 and the plot
(TFMA's mean_squared_error likewise skips NaN errors).
"""

from __future__ import annotations

import math
from typing import Iterable

import apache_beam as beam
from tensorflow_model_analysis.metrics import mean_regression_error, metric_types, metric_util
from tensorflow_model_analysis.proto import metrics_for_slice_pb2

RMSE_NAME = "root_mean_squared_error"
R2_NAME = "r2"
RESIDUAL_PLOT_NAME = "residual_plot"
_SUMMARY_NAME = "_regression_summary"  # private: TFMA does not write names starting with "_"

MAX_BUCKETS = 1000
PLOT_BINS = 20
_FIRST_SHIFT = -40  # buckets start 2^-40 wide, so near-constant predictions still split
_MAX_EXPONENT = 1000  # prediction / 2^shift stays below 2^1000: a float with an exact floor


class _Summary:
    """What one slice needs for r2 and the residual plot; mergeable."""

    __slots__ = ("weight", "label_mean", "label_m2", "sse", "shift", "buckets")

    def __init__(self):
        self.weight = 0.0
        self.label_mean = 0.0
        self.label_m2 = 0.0  # sum of w * (label - mean)^2
        self.sse = 0.0  # sum of w * (label - prediction)^2
        self.shift = _FIRST_SHIFT
        self.buckets: dict[int, list[float]] = {}  # index -> [weight, sum w*prediction, sum w*label]

    def add(self, label: float, prediction: float, weight: float) -> None:
        if weight <= 0.0:
            return
        total = self.weight + weight
        delta = label - self.label_mean
        self.label_mean += delta * weight / total
        self.label_m2 += weight * delta * (label - self.label_mean)
        self.weight = total
        error = label - prediction
        self.sse += weight * error * error  # inf, not OverflowError, for a huge error
        exponent = math.frexp(prediction)[1]
        if exponent - self.shift > _MAX_EXPONENT:  # a huge prediction on a fine grid: coarsen to index it
            steps = exponent - self.shift - _MAX_EXPONENT
            self.buckets = _coarsen(self.buckets, steps)
            self.shift += steps
        index = math.floor(math.ldexp(prediction, -self.shift))
        bucket = self.buckets.get(index)
        if bucket is None:
            self.buckets[index] = [weight, weight * prediction, weight * label]
            self._fit()
        else:
            bucket[0] += weight
            bucket[1] += weight * prediction
            bucket[2] += weight * label

    def merge(self, other: "_Summary") -> None:
        if other.weight == 0.0:
            return
        if self.weight == 0.0:
            self.weight, self.label_mean, self.label_m2 = other.weight, other.label_mean, other.label_m2
        else:  # Chan et al.'s pairwise update
            total = self.weight + other.weight
            delta = other.label_mean - self.label_mean
            self.label_m2 += other.label_m2 + delta * delta * self.weight * other.weight / total
            self.label_mean += delta * other.weight / total
            self.weight = total
        self.sse += other.sse
        theirs = other.buckets
        if other.shift < self.shift:
            theirs = _coarsen(theirs, self.shift - other.shift)
        elif other.shift > self.shift:
            self.buckets = _coarsen(self.buckets, other.shift - self.shift)
            self.shift = other.shift
        for index, (w, p, y) in theirs.items():
            bucket = self.buckets.setdefault(index, [0.0, 0.0, 0.0])
            bucket[0] += w
            bucket[1] += p
            bucket[2] += y
        self._fit()

    def _fit(self) -> None:
        while len(self.buckets) > MAX_BUCKETS:
            self.buckets = _coarsen(self.buckets, 1)
            self.shift += 1

    def r2(self) -> float:
        if self.weight == 0.0 or self.label_m2 <= 0.0:
            return float("nan")  # no examples, or every label the same: R² is undefined
        return 1.0 - self.sse / self.label_m2

    def plot(self, bins: int = PLOT_BINS) -> metrics_for_slice_pb2.CalibrationHistogramBuckets:
        out = metrics_for_slice_pb2.CalibrationHistogramBuckets()
        total = sum(b[0] for b in self.buckets.values())
        if not total:
            return out
        current, first, cumulative = None, None, 0.0
        indices = sorted(self.buckets)
        for index in indices:
            w, p, y = self.buckets[index]
            if current is None:
                current, first = [0.0, 0.0, 0.0], index
            current[0] += w
            current[1] += p
            current[2] += y
            cumulative += w
            if cumulative >= total * (len(out.buckets) + 1) / bins * (1 - 1e-12) or index == indices[-1]:
                out.buckets.add(
                    lower_threshold_inclusive=math.ldexp(first, self.shift),
                    upper_threshold_exclusive=math.ldexp(index + 1, self.shift),
                    num_weighted_examples={"value": current[0]},
                    total_weighted_refined_prediction={"value": current[1]},
                    total_weighted_label={"value": current[2]},
                )
                current = None
        return out


def _coarsen(buckets: dict[int, list[float]], steps: int) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for index, (w, p, y) in buckets.items():
        bucket = out.setdefault(index >> steps, [0.0, 0.0, 0.0])  # >> floors negatives too
        bucket[0] += w
        bucket[1] += p
        bucket[2] += y
    return out


class _SummaryCombiner(beam.CombineFn):
    def __init__(self, key: metric_types.MetricKey, eval_config, example_weighted: bool):
        self._key = key
        self._eval_config = eval_config
        self._example_weighted = example_weighted

    def create_accumulator(self) -> _Summary:
        return _Summary()

    def add_input(self, accumulator: _Summary, element: metric_types.StandardMetricInputs) -> _Summary:
        for label, prediction, weight in metric_util.to_label_prediction_example_weight(
            element,
            eval_config=self._eval_config,
            model_name=self._key.model_name,
            output_name=self._key.output_name,
            example_weighted=self._example_weighted,
        ):
            y = float(metric_util.safe_to_scalar(label))
            p = float(metric_util.safe_to_scalar(prediction))
            if math.isfinite(y) and math.isfinite(p):
                accumulator.add(y, p, float(metric_util.safe_to_scalar(weight)))
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[_Summary]) -> _Summary:
        accumulators = iter(accumulators)
        result = next(accumulators)
        for a in accumulators:
            result.merge(a)
        return result

    def extract_output(self, accumulator: _Summary) -> dict:
        return {self._key: accumulator}


def _summary(eval_config, model_name: str, output_name: str, example_weighted: bool):
    """The one per-example pass r2 and residual_plot share (TFMA de-duplicates it by key)."""
    key = metric_types.MetricKey(
        name=_SUMMARY_NAME, model_name=model_name, output_name=output_name, example_weighted=example_weighted
    )
    return [
        metric_types.MetricComputation(
            keys=[key], preprocessors=None, combiner=_SummaryCombiner(key, eval_config, example_weighted)
        )
    ], key


def _r2_computations(name=R2_NAME, eval_config=None, model_name="", output_name="", example_weighted=False):
    computations, summary_key = _summary(eval_config, model_name, output_name, example_weighted)
    key = metric_types.MetricKey(
        name=name, model_name=model_name, output_name=output_name, example_weighted=example_weighted
    )
    computations.append(
        metric_types.DerivedMetricComputation(keys=[key], result=lambda metrics: {key: metrics[summary_key].r2()})
    )
    return computations


def _residual_plot_computations(
    name=RESIDUAL_PLOT_NAME, bins=PLOT_BINS, eval_config=None, model_name="", output_name="", example_weighted=False
):
    computations, summary_key = _summary(eval_config, model_name, output_name, example_weighted)
    key = metric_types.PlotKey(
        name=name, model_name=model_name, output_name=output_name, example_weighted=example_weighted
    )
    computations.append(
        metric_types.DerivedMetricComputation(keys=[key], result=lambda metrics: {key: metrics[summary_key].plot(bins)})
    )
    return computations


def _rmse_computations(
    name=RMSE_NAME,
    eval_config=None,
    model_name="",
    output_name="",
    sub_key=None,
    aggregation_type=None,
    class_weights=None,
    example_weighted=False,
    preprocessors=None,
):
    # The very call MeanSquaredError makes, so its combiner runs once for both metrics.
    computations = mean_regression_error._mean_squared_error_computations(
        name=mean_regression_error.MEAN_SQUARED_ERROR_NAME,
        eval_config=eval_config,
        model_name=model_name,
        output_name=output_name,
        example_weighted=example_weighted,
        sub_key=sub_key,
        aggregation_type=aggregation_type,
        class_weights=class_weights,
        preprocessors=preprocessors,
    )
    mse_key = computations[-1].keys[-1]
    key = metric_types.MetricKey(
        name=name,
        model_name=model_name,
        output_name=output_name,
        sub_key=sub_key,
        example_weighted=example_weighted,
        aggregation_type=aggregation_type,
    )

    def result(metrics):
        mse = metrics[mse_key]
        return {key: math.sqrt(mse) if mse >= 0 else float("nan")}  # NaN stays NaN

    computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
    return computations


class RootMeanSquaredError(metric_types.Metric):
    def __init__(self, name: str = RMSE_NAME):
        super().__init__(metric_util.merge_per_key_computations(_rmse_computations), name=name)


class RSquared(metric_types.Metric):
    def __init__(self, name: str = R2_NAME):
        super().__init__(metric_util.merge_per_key_computations(_r2_computations), name=name)


class ResidualPlot(metric_types.Metric):
    def __init__(self, name: str = RESIDUAL_PLOT_NAME, bins: int = PLOT_BINS):
        super().__init__(metric_util.merge_per_key_computations(_residual_plot_computations), name=name, bins=bins)
