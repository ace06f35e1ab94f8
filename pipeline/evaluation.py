"""The TFMA EvalConfig: what the Evaluator measures, per slice, and what blesses a model."""

from __future__ import annotations

import json

# TFMA 0.52's top-level module lists but does not export its config protos, so they
# come from config_pb2 directly.
from tensorflow_model_analysis.proto import config_pb2 as tfma

from modeling.roles import LABEL_KEY
from pipeline import histogram_metrics
from pipeline.config import PipelineConfig


FAIRNESS_METRICS = ("FallOut", "MissRate", "PredictedPositiveRate", "FalseDiscoveryRate")


def from_histogram(class_name: str, **kwargs) -> tfma.MetricConfig:
    """TFMA's metric `class_name`, computed from the AUC's prediction histogram (see
    histogram_metrics): same name and value, a fraction of the cost."""
    return tfma.MetricConfig(class_name=class_name + histogram_metrics.SUFFIX,
                             module=histogram_metrics.__name__, **kwargs)


def slicing_specs(cfg: PipelineConfig) -> list[tfma.SlicingSpec]:
    specs = [tfma.SlicingSpec()]  # overall
    specs += [tfma.SlicingSpec(feature_keys=[key]) for key in cfg.slicing_features]
    specs += [tfma.SlicingSpec(feature_keys=list(cross)) for cross in cfg.slicing_crosses]
    return specs


def overall_only(threshold: tfma.MetricThreshold) -> tfma.PerSliceMetricThreshold:
    """Gate on the whole eval set: a small slice's noise must not block a release.
    Per-slice results are still computed and reported."""
    return tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)


def eval_config(cfg: PipelineConfig, plan=None) -> tfma.EvalConfig:
    higher = tfma.MetricDirection.HIGHER_IS_BETTER
    auc_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": cfg.thresholds.get("auc", {}).get("min", 0.5)}),
        # The candidate may lose at most max_auc_drop against the last blessed model.
        change_threshold=tfma.GenericChangeThreshold(
            direction=higher, absolute={"value": -cfg.max_drop.get("auc", 0.01) - 1e-10}),
    )
    accuracy_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": cfg.thresholds.get("binary_accuracy", {}).get("min", 0.0)}))
    metrics = [
        tfma.MetricConfig(class_name="ExampleCount"),
        tfma.MetricConfig(class_name="AUC", per_slice_thresholds=[overall_only(auc_threshold)]),
        tfma.MetricConfig(class_name="AUCPrecisionRecall"),
        from_histogram("BinaryAccuracy", per_slice_thresholds=[overall_only(accuracy_threshold)]),
        from_histogram("Precision"),
        from_histogram("Recall"),
        from_histogram("MeanLabel"),
        from_histogram("MeanPrediction"),
        from_histogram("Calibration"),
        tfma.MetricConfig(class_name="CalibrationPlot"),
        tfma.MetricConfig(class_name="ConfusionMatrixPlot"),
    ]
    # Fairness indicators: the error rates that Fairness Indicators reports, computed
    # per slice at each decision threshold with TFMA's own metrics (the
    # fairness-indicators package cannot be installed beside TFX 1.21).
    fairness = {"thresholds": list(cfg.fairness_thresholds)}
    metrics += [from_histogram(name, config=json.dumps(fairness))
                for name in FAIRNESS_METRICS]
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name="serving_default",
            label_key=LABEL_KEY,
            preprocessing_function_names=["transform_features"],
        )],
        slicing_specs=slicing_specs(cfg),
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )
