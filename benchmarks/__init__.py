"""`make bench`: our DAG against TFX's own taxi example and a plain-TensorFlow baseline.

Benchmarks are measurements, not tests: nothing here asserts a timing. See README
("Benchmarks") for what is measured and how to read the table.
"""
