"""Slice reports for reviewers: the Evaluator's results as self-contained HTML and Markdown."""
