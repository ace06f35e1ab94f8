"""What the Evaluator computes and how its results read: the metrics per task, the gates,
the project's own TFMA metrics (run inside the Evaluator, so they live below the pipeline
definition), and the reading of a finished evaluation shared by the summary and the report."""
