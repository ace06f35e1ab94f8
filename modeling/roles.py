"""What to learn and from what: the task, the label and each feature's role, from the schema.

The result is a `Plan`, plain data that travels as JSON in Transform's and the Trainer's
`custom_config`, so the same decisions drive the preprocessing graph, the Keras model,
the serving signatures and the evaluation, and a changed decision re-runs exactly the
components that depend on it. Every decision comes with a reason (`Plan.notes`) that the
run prints: a data scientist must be able to see why a column became a category.

Roles and their transforms (modeling/preprocessing.py):
- numeric:              z-score (missing and non-finite values -> 0, the mean)
- bucketized:           quantile buckets, plus one bucket for missing (only where configured)
- integer_categorical:  a vocabulary of the integer values, plus out-of-vocabulary buckets
- string_vocabulary:    a vocabulary of the strings, plus out-of-vocabulary buckets
Optional features (no fixed shape in the schema) also get a 0/1 missing indicator.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

TASKS = ("binary", "multiclass", "regression")
ROLES = ("numeric", "bucketized", "integer_categorical", "string_vocabulary")
# An integer feature with an int_domain this small (or is_categorical) is a category.
MAX_CATEGORICAL_RANGE = 1000
# A label sampled from the data with at most this many distinct integers is a class id.
MAX_SAMPLED_CLASSES = 20
MAX_CLASSES = 1000
LABEL_KEY = "__label_xf"
_POSITIVE_WORDS = ("1", "true", "yes", "y", "t", "positive", "pos")


class PlanError(ValueError):
    """A setting cannot work with this schema; the message starts with the setting's name."""


@dataclass
class Feature:
    name: str  # as in the data and the schema (any string)
    key: str  # its transformed name: a valid TensorFlow and Keras name
    role: str
    dtype: str  # "int", "float" or "string"
    optional: bool  # may be absent: gets a missing indicator


@dataclass
class Plan:
    task: str
    label: str  # the label's name (a schema feature, or the hook's)
    label_dtype: str  # "int", "float", "string"; "hook" when the hook makes it
    classes: list[str] = field(default_factory=list)  # class names in id order (not regression)
    positive_class: str = ""  # binary: the value that means 1
    hook: str = ""  # module with label(inputs) for derived labels
    features: list[Feature] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)  # feature -> why it is not used
    vocab_size: int = 1000
    oov_buckets: int = 1
    quantile_buckets: int = 10
    notes: list[str] = field(default_factory=list)

    label_key = LABEL_KEY

    @property
    def output_key(self) -> str:
        """The serving_default output that TFMA scores."""
        return "predictions" if self.task == "regression" else "probabilities"

    @property
    def serving_excluded(self) -> list[str]:
        """Features a client does not send: the label and whatever only the label reads."""
        return sorted(k for k, why in self.excluded.items() if why.startswith(("the label", "read by the hook")))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        data = json.loads(text)
        data["features"] = [Feature(**f) for f in data["features"]]
        return cls(**data)


def transformed_key(name: str, taken: set[str]) -> str:
    """A name TensorFlow and Keras accept for any column name ("trip miles", "a.b", "3rd")."""
    slug = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "feature"
    if not slug[0].isalpha():
        slug = "f_" + slug
    key, n = f"{slug}_xf", 2
    while key in taken:
        key, n = f"{slug}_{n}_xf", n + 1
    taken.add(key)
    return key


_TYPES = {0: "unknown", 1: "string", 2: "int", 3: "float", 4: "struct"}  # schema_pb2.FeatureType


def _dtype(feature) -> str:
    return _TYPES.get(feature.type, "unknown")


def _string_domain(schema, feature) -> list[str] | None:
    if feature.HasField("string_domain"):
        return list(feature.string_domain.value)
    if feature.HasField("domain"):
        for d in schema.string_domain:
            if d.name == feature.domain:
                return list(d.value)
    return None


def _multivalent(feature) -> int | None:
    """The most values one example may hold, when that is more than one."""
    if feature.HasField("shape"):
        size = 1
        for d in feature.shape.dim:
            size *= d.size
        return size if size != 1 else None
    if feature.HasField("value_count") and feature.value_count.max != 1:
        return feature.value_count.max or -1
    return None


def load_hook(module: str):
    try:
        hook = importlib.import_module(module)
    except ImportError as e:
        raise PlanError(f"hook: cannot import {module!r}: {e}") from None
    if not callable(getattr(hook, "label", None)):
        raise PlanError(f"hook: {module} must define label(inputs) -> tensor")
    return hook


def make_plan(
    schema,
    *,
    label: str,
    task: str = "auto",
    positive_class: str = "",
    features: Iterable[str] = (),
    exclude: Iterable[str] = (),
    roles: dict[str, str] | None = None,
    hook: str = "",
    label_sample: Callable[[], list] | None = None,
    vocab_size: int = 1000,
    oov_buckets: int = 1,
    quantile_buckets: int = 10,
) -> Plan:
    """Decide the task and every feature's role from the schema and the settings.

    `label_sample` returns some of the label's values from the data; it is called only
    when the schema cannot tell the task (a number with no domain, a string without its
    values), so a fully described schema decides without reading any data.
    """
    by_name = {f.name: f for f in schema.feature}
    roles = dict(roles or {})
    if not label:
        raise PlanError(
            f"label: name the feature to predict (e.g. --set label=NAME); schema features: {', '.join(sorted(by_name))}"
        )
    if task not in ("auto",) + TASKS:
        raise PlanError(f"task: one of auto, {', '.join(TASKS)}; got {task!r}")
    plan = Plan(
        task="",
        label=label,
        label_dtype="",
        hook=hook,
        vocab_size=vocab_size,
        oov_buckets=oov_buckets,
        quantile_buckets=quantile_buckets,
    )
    sources: tuple[str, ...] = ()
    if hook:
        module = load_hook(hook)
        sources = tuple(getattr(module, "SOURCES", ()))
        for s in sources:
            if s not in by_name:
                raise PlanError(f"hook: {hook}.SOURCES names {s!r}, which is not in the schema")
        _decide_hooked_label(plan, module, task)
    else:
        if label not in by_name:
            raise PlanError(f"label: {label!r} is not a feature of the schema (features: {', '.join(sorted(by_name))})")
        _decide_label(plan, schema, by_name[label], task, positive_class, label_sample)
        plan.excluded[label] = "the label"
    for s in sources:
        plan.excluded[s] = f"read by the hook {hook} to make the label"

    wanted = list(features) or [f.name for f in schema.feature]
    unknown = [n for n in list(features) + list(exclude) + list(roles) if n not in by_name]
    if unknown:
        which = (
            "features" if unknown[0] in features else "exclude_features" if unknown[0] in exclude else "feature_roles"
        )
        raise PlanError(f"{which}: {unknown[0]!r} is not a feature of the schema")
    for name, role in roles.items():
        if role not in ROLES:
            raise PlanError(f"feature_roles.{name}: one of {', '.join(ROLES)}; got {role!r}")
    taken: set[str] = set()
    for name in wanted:
        if name in plan.excluded:
            continue
        f = by_name[name]
        if name in exclude:
            plan.excluded[name] = "excluded by exclude_features"
            continue
        if "SERVING" in f.not_in_environment:
            plan.excluded[name] = "not in the SERVING environment: clients do not send it"
            continue
        dtype = _dtype(f)
        many = _multivalent(f)
        if dtype not in ("int", "float", "string"):
            plan.excluded[name] = f"type {dtype} is not supported"
            continue
        if many:
            plan.excluded[name] = (
                "holds several values per example "
                f"({'up to ' + str(many) if many > 0 else 'any number'}); not supported"
            )
            continue
        role = roles.get(name) or _infer_role(f, dtype)
        _check_role(name, role, dtype)
        optional = not f.HasField("shape")
        plan.features.append(
            Feature(name=name, key=transformed_key(name, taken), role=role, dtype=dtype, optional=optional)
        )
    if not plan.features:
        raise PlanError(
            "features: no usable feature is left (all excluded or unsupported: "
            + "; ".join(f"{k}: {v}" for k, v in sorted(plan.excluded.items()))
            + ")"
        )
    counts = {r: sum(1 for f in plan.features if f.role == r) for r in ROLES}
    plan.notes.append(
        "features: "
        + ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in counts.items() if n)
        + (f"; not used: {', '.join(sorted(plan.excluded))}" if plan.excluded else "")
    )
    return plan


def _infer_role(f, dtype: str) -> str:
    if dtype == "string":
        return "string_vocabulary"
    if dtype == "float":
        return "numeric"
    if f.HasField("bool_domain"):
        return "integer_categorical"
    if f.HasField("int_domain"):
        d = f.int_domain
        if d.is_categorical or (d.HasField("min") and d.HasField("max") and d.max - d.min < MAX_CATEGORICAL_RANGE):
            return "integer_categorical"
    return "numeric"


def _check_role(name: str, role: str, dtype: str) -> None:
    if dtype == "string" and role != "string_vocabulary":
        raise PlanError(f"feature_roles.{name}: a string feature can only be string_vocabulary, not {role}")
    if dtype != "string" and role == "string_vocabulary":
        raise PlanError(f"feature_roles.{name}: string_vocabulary is for strings; {name} is {dtype}")
    if dtype == "float" and role == "integer_categorical":
        raise PlanError(f"feature_roles.{name}: {name} is float; use numeric or bucketized")


def _decide_hooked_label(plan: Plan, module, task: str) -> None:
    declared = getattr(module, "TASK", "")
    if task == "auto":
        if declared not in TASKS:
            raise PlanError(f"task: the hook {module.__name__} declares no TASK; set task")
        task = declared
        plan.notes.append(f"task: {task}, as the hook {module.__name__} declares")
    else:
        plan.notes.append(f"task: {task}, as configured")
    plan.task, plan.label_dtype = task, "hook"
    if task == "binary":
        plan.classes = list(getattr(module, "CLASSES", ("0", "1")))
    elif task == "multiclass":
        plan.classes = list(getattr(module, "CLASSES", ()))
        if len(plan.classes) < 3:
            raise PlanError(f"hook: {module.__name__}.CLASSES must list the class names for multiclass")


def _sample(label: str, label_sample) -> list:
    if label_sample is None:
        raise PlanError(
            f"task: the schema does not say what kind of label {label!r} is (no domain) and the "
            "data cannot be read here; set task (binary, multiclass or regression) or give "
            "the label a domain in the schema"
        )
    values = label_sample()
    if not values:
        raise PlanError(f"label: no example in the data has a value for {label!r}")
    return values


def _decide_label(plan: Plan, schema, f, task: str, positive_class: str, label_sample) -> None:
    dtype = _dtype(f)
    plan.label_dtype = dtype
    name = f.name
    if dtype not in ("int", "float", "string"):
        raise PlanError(f"label: {name!r} has type {dtype}; a label must be an int, float or string")
    if _multivalent(f):
        raise PlanError(f"label: {name!r} holds several values per example; a label needs one")
    why = ""
    classes: list[str] | None = None
    if dtype == "string":
        classes = _string_domain(schema, f)
        if classes is not None:
            why = f"its schema domain has {len(classes)} values"
        else:
            classes = sorted({_text(v) for v in _sample(name, label_sample)})
            why = f"{len(classes)} distinct values in a sample of the data (no domain in the schema)"
        inferred = "binary" if len(classes) == 2 else "multiclass"
    elif dtype == "int":
        if f.HasField("bool_domain"):
            classes, why = ["0", "1"], "it has a bool_domain"
        elif (
            f.HasField("int_domain")
            and f.int_domain.HasField("min")
            and f.int_domain.HasField("max")
            and f.int_domain.max - f.int_domain.min < MAX_CLASSES
        ):
            classes = [str(v) for v in range(f.int_domain.min, f.int_domain.max + 1)]
            why = f"its int_domain is [{f.int_domain.min}, {f.int_domain.max}]"
        elif task == "regression":
            classes = None
        else:
            values = sorted({int(v) for v in _sample(name, label_sample)})
            if len(values) <= MAX_SAMPLED_CLASSES:
                classes = [str(v) for v in values]
                why = f"a sample of the data holds only the integers {', '.join(classes)} (no domain in the schema)"
            else:
                why = f"a sample of the data holds {len(values)} distinct integers (no domain in the schema)"
        inferred = "regression" if classes is None else ("binary" if len(classes) == 2 else "multiclass")
    else:
        inferred, why = "regression", "it is a float"
        if task in ("auto", "binary") and label_sample is not None:
            values = {float(v) for v in label_sample()}
            if values and values <= {0.0, 1.0}:
                classes, why = ["0", "1"], "it is a float, but a sample of the data holds only 0 and 1"
                inferred = "binary"
    if task == "auto":
        task = inferred
        plan.notes.append(f"task: {task}, because label {name!r} is {dtype} and {why}")
    else:
        plan.notes.append(f"task: {task}, as configured (label {name!r} is {dtype})")
    plan.task = task

    if task == "regression":
        if dtype == "string":
            raise PlanError(f"task: regression needs a numeric label; {name!r} is a string")
        return
    if classes is None:
        if dtype == "float" and task == "binary":
            classes = ["0", "1"]
        else:
            raise PlanError(f"task: {task} needs the label's classes; give {name!r} a domain in the schema")
    if task == "multiclass":
        if dtype == "float":
            raise PlanError(f"task: multiclass needs an int or string label; {name!r} is a float")
        if len(classes) < 2 or len(classes) > MAX_CLASSES:
            raise PlanError(f"task: multiclass needs 2 to {MAX_CLASSES} classes; {name!r} has {len(classes)}")
        plan.classes = classes
        return
    # binary
    if positive_class:
        if dtype != "float" and positive_class not in classes:
            raise PlanError(
                f"positive_class: {positive_class!r} is not a value of {name!r} ({', '.join(classes[:20])})"
            )
        positive = positive_class
    elif len(classes) == 2:
        lower = [c.lower() for c in classes]
        positive = next((classes[lower.index(w)] for w in _POSITIVE_WORDS if w in lower), sorted(classes)[1])
        if dtype == "string":
            plan.notes.append(f"positive class: {positive!r} (set positive_class to choose the other)")
    else:
        raise PlanError(
            f"positive_class: label {name!r} has {len(classes)} values; name the one that "
            "means 1 (or set task=multiclass)"
        )
    negatives = [c for c in classes if c != positive]
    plan.positive_class = positive
    plan.classes = [negatives[0] if len(negatives) == 1 else f"not {positive}", positive]


def _text(v) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
