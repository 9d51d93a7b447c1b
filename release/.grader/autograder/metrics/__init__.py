"""Metrics shared by the grader and the notebooks (ex05, ex06)."""
