"""The `archdsl` command's entry point. It imports nothing else until it runs, so a Ctrl-C
while the rest of archdsl loads is answered as one later is (`interrupted`, status 130),
not with Python's traceback."""

import sys


def run() -> None:
    try:
        from .cli import main

        status = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        status = 130
    sys.exit(status)
