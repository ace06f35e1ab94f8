"""The one feature list shared by Transform, Trainer and Evaluator.

Every module that needs a feature name imports it from here, so renaming a feature or
adding one is a one-file change that Transform, the Keras model and TFMA all see.
"""

from __future__ import annotations

LABEL_KEY = "tips"  # raw column the label is derived from; absent at serving time
FARE_KEY = "fare"
BIG_TIP_FRACTION = 0.2  # a "big tipper" tips more than 20% of the fare

# Numeric features that are z-scored.
DENSE_FLOAT_FEATURE_KEYS = ("trip_miles", "fare", "trip_seconds")

# Coordinates, bucketized by quantiles.
BUCKET_FEATURE_KEYS = ("pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude")
FEATURE_BUCKET_COUNT = 10  # plus one bucket for "missing"

# Small-integer categorical features and how many distinct ids each can take.
CATEGORICAL_FEATURE_MAX_VALUES = {
    "trip_start_hour": 24,
    "trip_start_day": 8,
    "trip_start_month": 13,
    "pickup_community_area": 78,
    "dropoff_community_area": 78,
}

# Strings mapped through a vocabulary computed by Transform.
VOCAB_FEATURE_KEYS = ("payment_type", "company")
VOCAB_SIZE = 1000
OOV_SIZE = 10


def transformed_name(key: str) -> str:
    return f"{key}_xf"


LABEL_XF = transformed_name("big_tipper")

# Raw features the model reads; everything else in the data is ignored.
MODEL_RAW_FEATURES = (
    DENSE_FLOAT_FEATURE_KEYS + BUCKET_FEATURE_KEYS
    + tuple(CATEGORICAL_FEATURE_MAX_VALUES) + VOCAB_FEATURE_KEYS
)
