"""What blesses a model, per task: metric names, their direction, and the default gates.

Kept free of TFMA so that loading a configuration can check gate names before anything
runs. `thresholds = { auc = { min = 0.7 } }` bounds a metric on the whole eval set;
`max_drop = { auc = 0.01 }` is how much worse than the last blessed model it may get
(for a lower-is-better metric such as mean_absolute_error: how much higher).
"""

from __future__ import annotations

HIGHER, LOWER = "higher", "lower"

# The metrics the Evaluator computes per task (TFMA's output names), and which way is better.
METRICS: dict[str, dict[str, str]] = {
    "binary": {
        "auc": HIGHER,
        "auc_precision_recall": HIGHER,
        "binary_accuracy": HIGHER,
        "precision": HIGHER,
        "recall": HIGHER,
        "example_count": HIGHER,
    },
    "multiclass": {
        "accuracy": HIGHER,
        "log_loss": LOWER,
        "example_count": HIGHER,
    },
    "regression": {
        "mean_absolute_error": LOWER,
        "mean_squared_error": LOWER,
        "root_mean_squared_error": LOWER,
        "r2": HIGHER,
        "example_count": HIGHER,
    },
}

# Used when the configuration gives no gates: better than chance, and no worse than the
# last blessed model by more than a little.
DEFAULT_THRESHOLDS: dict[str, dict[str, dict[str, float]]] = {
    "binary": {"auc": {"min": 0.5}},
    "multiclass": {},
    "regression": {"r2": {"min": 0.0}},
}
DEFAULT_MAX_DROP: dict[str, dict[str, float]] = {
    "binary": {"auc": 0.01},
    "multiclass": {"accuracy": 0.01},
    "regression": {"r2": 0.01},
}


class GateError(ValueError):
    """A gate names an unknown metric or an impossible bound; the message names the field."""


def gates_for(task: str, thresholds: dict, max_drop: dict) -> tuple[dict, dict]:
    """The gates that apply: the configured ones, or the task's defaults; checked."""
    known = METRICS[task]
    thresholds = thresholds or DEFAULT_THRESHOLDS[task]
    max_drop = max_drop or DEFAULT_MAX_DROP[task]
    for name, bounds in thresholds.items():
        if name not in known:
            raise GateError(f"thresholds.{name}: not a metric of a {task} model (known: {', '.join(sorted(known))})")
        if not isinstance(bounds, dict) or not bounds or set(bounds) - {"min", "max"}:
            raise GateError(f"thresholds.{name}: expected {{ min = X }} and/or {{ max = Y }}, got {bounds!r}")
        for k, v in bounds.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise GateError(f"thresholds.{name}.{k}: expected a number, got {v!r}")
        if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
            raise GateError(f"thresholds.{name}: min {bounds['min']} is above max {bounds['max']}")
    for name, drop in max_drop.items():
        if name not in known:
            raise GateError(f"max_drop.{name}: not a metric of a {task} model (known: {', '.join(sorted(known))})")
        if isinstance(drop, bool) or not isinstance(drop, (int, float)) or drop < 0:
            raise GateError(f"max_drop.{name}: expected a number >= 0, got {drop!r}")
    # Always one value gate: TFMA blesses nothing when no threshold applies (a first run
    # has no baseline, so max_drop alone would leave none), and an empty eval split must not pass.
    thresholds = {"example_count": {"min": 1}, **thresholds}
    return (
        {k: {b: float(v) for b, v in bounds.items()} for k, bounds in thresholds.items()},
        {k: float(v) for k, v in max_drop.items()},
    )


def describe(task: str, thresholds: dict, max_drop: dict) -> str:
    """One line for the run's summary: 'gates: auc >= 0.7; auc drop <= 0.01 vs baseline'."""
    parts = []
    for name, bounds in thresholds.items():
        if "min" in bounds:
            parts.append(f"{name} >= {bounds['min']:g}")
        if "max" in bounds:
            parts.append(f"{name} <= {bounds['max']:g}")
    for name, drop in max_drop.items():
        worse = "rise" if METRICS[task][name] == LOWER else "drop"
        parts.append(f"{name} {worse} <= {drop:g} vs the last blessed model")
    return "; ".join(parts) or "none"
