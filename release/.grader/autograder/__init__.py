"""Autograder for the LLM course on Databricks (nbgrader + a Foundation Model API fixture server)."""
__version__ = "0.1.0"
