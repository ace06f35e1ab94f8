"""The Evaluator's extractors: TFMA's defaults, with a cheaper per-example slice-key step
and the features pruned to the slicing columns before TFMA unbatches them.

Why: profiled on 150k rows (docs/benchmarks.md, "The Evaluator, profiled"), 43% of the
Evaluator's busy time was TFMA's slice keys, nearly all of it in one `np.unique` per slicing
column per example (slice_accessor.SliceAccessor.get): a sort of a one-element array. The
slices and their keys are TFMA's own (slicer_lib's SingleSliceSpec.generate_slices, same
specs, same order); only a single-valued feature skips the sort, whose result for one
value is that value. Anything else (several values, several sources, other types) goes
through TFMA's own `get`.

TFX's Evaluator calls `custom_extractors` from the module named by its `module_path`
(tfx/components/evaluator/executor.py, udf_utils.try_get_fn), with the arguments below.
"""

from __future__ import annotations

import copy

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.api import model_eval_lib
from tensorflow_model_analysis.extractors import extractor, slice_key_extractor, unbatch_extractor
from tensorflow_model_analysis.slicer import slice_accessor
from tensorflow_model_analysis.slicer import slicer_lib as slicer
from tensorflow_model_analysis.utils import util


class _SliceAccessor(slice_accessor.SliceAccessor):
    """TFMA's accessor; a feature with one value in one place returns it without a sort."""

    def get(self, key: str):
        found = [d.get(key) for d in self._features_dicts]
        found = [v for v in found if v is not None]
        if not found and self._default_features_dict:
            value = self._default_features_dict.get(key)
            found = [value] if value is not None else []
        if len(found) == 1 and isinstance(found[0], np.ndarray) and found[0].size == 1:
            return found[0].reshape(-1).tolist()
        return super().get(key)


class _ExtractSliceKeysFn(slice_key_extractor.ExtractSliceKeysFn):
    """TFMA 0.52's ExtractSliceKeysFn.process with _SliceAccessor (no SQL slices here:
    our EvalConfig has none, so SLICE_KEY_TYPES_KEY is not set before this step)."""

    def process(self, element, slice_spec):
        features_dicts = []
        transformed = element.get(constants.TRANSFORMED_FEATURES_KEY)
        if transformed is not None:
            if not self._eval_config or len(self._eval_config.model_specs) == 1:
                features_dicts.append(transformed)
            else:
                for spec in self._eval_config.model_specs:
                    if spec.name in transformed:
                        features_dicts.append(transformed[spec.name])
        accessor = _SliceAccessor(features_dicts, util.get_features_from_extracts(element))
        slice_keys = [key for spec in slice_spec for key in spec.generate_slices(accessor)]
        unique_slice_keys = list(set(slice_keys))
        if len(slice_keys) != len(unique_slice_keys):
            self._duplicate_slice_keys_counter.inc()
        element_copy = copy.copy(element)
        element_copy[constants.SLICE_KEY_TYPES_KEY] = slicer.slice_keys_to_numpy_array(unique_slice_keys)
        return [element_copy]


def _slice_key_extractor(eval_config) -> extractor.Extractor:
    # As slice_key_extractor.SliceKeyExtractor builds its specs from an EvalConfig.
    slice_spec = [slicer.SingleSliceSpec(spec=spec) for spec in eval_config.slicing_specs] or [slicer.SingleSliceSpec()]
    return extractor.Extractor(
        stage_name=slice_key_extractor.SLICE_KEY_EXTRACTOR_STAGE_NAME,
        ptransform=beam.ParDo(_ExtractSliceKeysFn(eval_config, materialize=False), slice_spec=slice_spec),
    )


def slicing_columns(eval_config) -> set[str]:
    """Every feature a slicing spec reads (its feature_keys and feature_values)."""
    return {key for spec in eval_config.slicing_specs for key in (*spec.feature_keys, *spec.feature_values)}


def _prune(batched: dict, columns: frozenset, per_model: bool) -> dict:
    pruned = {k: v for k, v in batched.items() if k != constants.INPUT_KEY}
    features = batched.get(constants.FEATURES_KEY)
    if features is not None:
        pruned[constants.FEATURES_KEY] = {k: v for k, v in features.items() if k in columns}
    transformed = batched.get(constants.TRANSFORMED_FEATURES_KEY)
    if transformed is not None:
        if per_model:
            transformed = {m: {k: v for k, v in t.items() if k in columns} for m, t in transformed.items()}
        else:
            transformed = {k: v for k, v in transformed.items() if k in columns}
        pruned[constants.TRANSFORMED_FEATURES_KEY] = transformed
    return pruned


def _prune_extractor(eval_config) -> extractor.Extractor:
    """Keeps, of the batched features and transformed features, only the slicing columns.

    Why: TFMA's next step (unbatch) copies every key of every example into a dict of its
    own, and our metrics read only labels, predictions and example weights, all extracted
    by then; the features are read afterwards only by the slice-key step, which reads the
    slicing columns (from the transformed features first, then the raw ones, as before:
    the same keys stay in the same places). The serialized example (`input`) has no
    reader after this point.
    """
    columns = frozenset(slicing_columns(eval_config))
    per_model = len(eval_config.model_specs) > 1
    return extractor.Extractor(
        stage_name="ExtractSlicingColumns",
        ptransform=beam.Map(_prune, columns=columns, per_model=per_model),
    )


def custom_extractors(eval_shared_model, eval_config, tensor_adapter_config):
    """TFMA's default extractors as ExtractEvaluateAndWriteResults makes them for an
    EvalConfig (config_version 2, nothing materialized), the slice-key step replaced and
    the features pruned to the slicing columns before TFMA unbatches them."""
    if eval_config.cross_slicing_specs or any(spec.slice_keys_sql for spec in eval_config.slicing_specs):
        raise ValueError("metrics.slicing: cross-slicing and SQL slices are not supported; remove module_path")
    extractors = model_eval_lib.default_extractors(
        eval_config=eval_config,
        eval_shared_model=eval_shared_model,
        tensor_adapter_config=tensor_adapter_config,
        config_version=2,
    )
    # The prune step keys the transformed features the way TFMA did (by model name when
    # there are several models), from the config default_extractors itself completed.
    completed = model_eval_lib._update_eval_config_with_defaults(eval_config, eval_shared_model)
    out = []
    for e in extractors:
        if e.stage_name == unbatch_extractor.UNBATCH_EXTRACTOR_STAGE_NAME:
            out.append(_prune_extractor(completed))
        if e.stage_name == slice_key_extractor.SLICE_KEY_EXTRACTOR_STAGE_NAME:
            e = _slice_key_extractor(eval_config)
        out.append(e)
    return out
