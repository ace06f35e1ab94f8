"""The local baseline for the Evaluator: the latest blessed model other than the candidate.

TFX's LatestBlessedModelStrategy returns the newest blessed model, which on a second run
with nothing changed is the candidate itself (the cached Trainer hands back the same
artifact). That new baseline input made the Evaluator, the InfraValidator and the Pusher
miss the cache and compare the model with itself: half a minute spent to learn nothing.
Excluding the candidate keeps the comparison meaningful (a model is judged against the one
before it) and makes an unchanged rerun a cache hit end to end.
"""

from typing import Dict, List, Optional

from tfx import types
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy

CANDIDATE = "candidate"


class PreviousBlessedModelStrategy(LatestBlessedModelStrategy):
    """Inputs: `model` and `model_blessing` (all of them, as for TFX's strategy) and
    `candidate` (the Trainer's model of this run). Output: the newest blessed model that is
    not the candidate, and its blessing; none on a first run."""

    def resolve_artifacts(
        self, store, input_dict: Dict[str, List[types.Artifact]]
    ) -> Optional[Dict[str, List[types.Artifact]]]:
        inputs = dict(input_dict)
        candidate = inputs.pop(CANDIDATE, [])
        excluded = {a.id for a in candidate}
        inputs["model"] = [a for a in inputs["model"] if a.id not in excluded]
        result = super().resolve_artifacts(store, inputs)
        result[CANDIDATE] = candidate
        return result
