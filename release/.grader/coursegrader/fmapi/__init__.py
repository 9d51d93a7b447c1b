"""A loopback fake of the Databricks Foundation Model API, vcrpy style.

cassette.py  what was recorded (interactions and their replay state)
matchers.py  how a live request matches a recorded one
persister.py how cassettes are stored (readable JSON, secrets redacted)
validation.py what the real service rejects (strict json_schema, tool messages)
server.py    the HTTP server: replay, record, request log
"""
from .server import FixtureServer

__all__ = ["FixtureServer"]
