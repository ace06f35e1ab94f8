"""Multiclass metrics as TFMA metrics: accuracy and per-class precision / recall from TFMA's
confusion matrix, and log loss.

Why derived from the matrix: TFMA's MultiClassConfusionMatrixPlot already counts every
(actual class, argmax class) pair per slice; accuracy and each class's precision and
recall are ratios of its cells, so they cost nothing more per example (TFMA's own
Precision/Recall per class would each keep a per-example accumulator per class). They
ask for the very computation the plot makes (`multi_class_confusion_matrices` at the
threshold 0.0, i.e. the argmax), which TFMA runs once.

Why our own log loss: TFMA's CategoricalCrossEntropy expects one-hot labels; with the
class id that the pipeline's label is, it multiplies the id into every class's log.

The label is the class id (an int in [0, K)); -1 marks a class the vocabulary did not
know. Such an example counts as a miss for accuracy and for the recall of no class, and
is left out of log loss (no probability was given to its class; counting it as -log(0)
would make the whole slice infinite).
"""

from __future__ import annotations

import math
from typing import Iterable

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.metrics import multi_class_confusion_matrix_metrics as mccm

ACCURACY_NAME = "accuracy"
PRECISION_NAME = "precision"
RECALL_NAME = "recall"
LOG_LOSS_NAME = "log_loss"
EPSILON = 1e-15  # a probability is clipped to [EPSILON, 1] before its log (as scikit-learn's log_loss)
ARGMAX = 0.0  # the confusion matrix threshold at which the predicted class is the argmax


def _matrix(eval_config, model_name, output_name, example_weighted):
    computations = mccm.multi_class_confusion_matrices(
        thresholds=[ARGMAX],
        eval_config=eval_config,
        model_name=model_name,
        output_name=output_name,
        example_weighted=example_weighted,
    )
    return computations, computations[-1].keys[-1]


def _cells(matrices) -> dict[tuple[int, int], float]:
    return {(k.actual_class_id, k.predicted_class_id): w for k, w in matrices.get(ARGMAX, {}).items()}


def _ratio(top: float, bottom: float) -> float:
    return top / bottom if bottom > 0 else float("nan")


def _accuracy_computations(name=ACCURACY_NAME, eval_config=None, model_name="", output_name="", example_weighted=False):
    computations, matrix_key = _matrix(eval_config, model_name, output_name, example_weighted)
    key = metric_types.MetricKey(
        name=name, model_name=model_name, output_name=output_name, example_weighted=example_weighted
    )

    def result(metrics):
        cells = _cells(metrics[matrix_key])
        right = sum(w for (actual, predicted), w in cells.items() if actual == predicted and actual >= 0)
        return {key: _ratio(right, sum(cells.values()))}

    computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
    return computations


def _per_class_computations(name, classes, eval_config=None, model_name="", output_name="", example_weighted=False):
    """One value per class id (TFMA's sub key `classId:N`), as TFMA's binarized metrics are keyed."""
    computations, matrix_key = _matrix(eval_config, model_name, output_name, example_weighted)
    keys = [
        metric_types.MetricKey(
            name=name,
            model_name=model_name,
            output_name=output_name,
            sub_key=metric_types.SubKey(class_id=c),
            example_weighted=example_weighted,
        )
        for c in range(len(classes))
    ]
    by_predicted = name == PRECISION_NAME

    def result(metrics):
        cells = _cells(metrics[matrix_key])
        out = {}
        for c, key in enumerate(keys):
            total = sum(w for (actual, predicted), w in cells.items() if (predicted if by_predicted else actual) == c)
            out[key] = _ratio(cells.get((c, c), 0.0), total)
        return out

    computations.append(metric_types.DerivedMetricComputation(keys=keys, result=result))
    return computations


class _LogLossCombiner(beam.CombineFn):
    def __init__(self, key: metric_types.MetricKey, eval_config, example_weighted: bool):
        self._key = key
        self._eval_config = eval_config
        self._example_weighted = example_weighted

    def create_accumulator(self) -> list[float]:
        return [0.0, 0.0]  # sum of w * -log p(true class), sum of w

    def add_input(self, accumulator: list[float], element: metric_types.StandardMetricInputs) -> list[float]:
        label, prediction, weight = next(
            metric_util.to_label_prediction_example_weight(
                element,
                eval_config=self._eval_config,
                model_name=self._key.model_name,
                output_name=self._key.output_name,
                example_weighted=self._example_weighted,
                flatten=False,
                require_single_example_weight=True,
            )
        )
        prediction = np.asarray(prediction, dtype=np.float64).reshape(-1)
        label = np.asarray(label).reshape(-1)
        class_id = int(np.argmax(label)) if label.size > 1 else int(label[0])
        total = prediction.sum()
        if 0 <= class_id < prediction.size and total > 0:
            p = min(max(prediction[class_id] / total, EPSILON), 1.0)
            w = float(np.asarray(weight).reshape(-1)[0])
            accumulator[0] -= w * math.log(p)
            accumulator[1] += w
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[list[float]]) -> list[float]:
        accumulators = iter(accumulators)
        result = next(accumulators)
        for a in accumulators:
            result[0] += a[0]
            result[1] += a[1]
        return result

    def extract_output(self, accumulator: list[float]) -> dict:
        return {self._key: _ratio(accumulator[0], accumulator[1])}


def _log_loss_computations(name=LOG_LOSS_NAME, eval_config=None, model_name="", output_name="", example_weighted=False):
    key = metric_types.MetricKey(
        name=name, model_name=model_name, output_name=output_name, example_weighted=example_weighted
    )
    return [
        metric_types.MetricComputation(
            keys=[key], preprocessors=None, combiner=_LogLossCombiner(key, eval_config, example_weighted)
        )
    ]


class MultiClassAccuracy(metric_types.Metric):
    """Share of examples whose highest-probability class is the label."""

    def __init__(self, name: str = ACCURACY_NAME):
        super().__init__(metric_util.merge_per_key_computations(_accuracy_computations), name=name)


class MultiClassPrecision(metric_types.Metric):
    """Per class c: of the examples predicted c (argmax), the share that are c.
    `classes` (the class names in id order) also travels to the report through the config."""

    def __init__(self, classes: list[str], name: str = PRECISION_NAME):
        super().__init__(
            metric_util.merge_per_key_computations(_per_class_computations), name=name, classes=list(classes)
        )


class MultiClassRecall(metric_types.Metric):
    """Per class c: of the examples that are c, the share predicted c (argmax)."""

    def __init__(self, classes: list[str], name: str = RECALL_NAME):
        super().__init__(
            metric_util.merge_per_key_computations(_per_class_computations), name=name, classes=list(classes)
        )


class LogLoss(metric_types.Metric):
    """Mean -log(probability given to the true class), probabilities clipped at 1e-15."""

    def __init__(self, name: str = LOG_LOSS_NAME):
        super().__init__(metric_util.merge_per_key_computations(_log_loss_computations), name=name)
