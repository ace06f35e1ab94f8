"""The project's tests; `tests.taxi_sample`, `tests.serving_support` and `tests.synthetic` hold what they share."""
