"""The one error type the command line turns into a usage message.

`UsageError` is a mistake in what the user asked for: an argument, a roster, an output folder. The CLI says it
as argparse does (exit 2). Any other exception is the grader's own error: the CLI logs it with its traceback
(exit 1), so a grader bug, a malformed cassette or a JSON decoding error never reads as the user's typo.
It subclasses ValueError, which these mistakes were raised as before.
"""
from __future__ import annotations


class UsageError(ValueError):
    """A mistake in the command's arguments or inputs, worded for the person who typed them."""
