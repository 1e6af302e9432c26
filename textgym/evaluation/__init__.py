"""Evaluation suite: metrics and runs."""
