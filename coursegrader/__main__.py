import os
import sys

from .cli import main

status = main()
sys.stdout.flush()
sys.stderr.flush()
os._exit(int(status or 0))  # everything is written; the interpreter's teardown (about a second with torch loaded) is skipped
