"""The course's grader as students receive it: the feedback tier, and the core the official grader builds on.

Everything here may be seen and run by students (the release ships this package whole).
The instructor's package (`autograder`) adds what they must not have: the evidence checks,
solutions and hidden tests, samples, collection, batch grading and the TA dashboard.
"""
__version__ = "0.2.0"

import sys as _sys

# jsonschema (under nbformat) compiles a Lark grammar for RFC 3987 IRIs at import when
# rfc3987_syntax is installed: 0.7 s in every grading process. Nothing here checks IRI formats.
_sys.modules.setdefault("rfc3987_syntax", None)
