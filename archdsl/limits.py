"""The limits that keep any spec from exhausting the machine, in one place.

Each is refused with a located error, quickly (docs/language.md, "Limits", lists them for
users; tests/test_limits.py checks each at its boundary; benchmarks/limits.py times the worst
specs within them). A spec is untrusted input: it may come from anyone.
"""

from __future__ import annotations

import contextlib
import sys

# ---- reading (syntax/, elaborate/program.py) -----------------------------------------------
# The whole zoo is 40 KiB; reading 64 KiB of spec takes about 0.7 s.
MAX_FILE_BYTES = 64 * 1024  # one spec file
MAX_TOTAL_BYTES = 128 * 1024  # a spec and every file it uses
MAX_FILES = 64
MAX_NESTING = 60  # indented bodies inside bodies
MAX_BRACKET_DEPTH = 64  # (), [] and {} inside each other

# ---- elaborating (elaborate/) --------------------------------------------------------------
MAX_NODES = 50_000  # layers in a network
MAX_BLOCK_DEPTH = 100  # block calls inside block calls
MAX_CALL_DEPTH = 200  # function calls inside function calls
MAX_VARIANT_DEPTH = 100  # variants of variants
MAX_ELEMENTS = 2 ** 40  # elements of one tensor, batch excluded
MAX_PARAMS = 2 ** 40  # parameters of one layer
MAX_INT = 2 ** 62  # integers are exact up to this
MAX_LIST = 1_000_000  # items of a list (nested ones included), characters of a string
MAX_VALUE_DEPTH = 64  # lists inside lists

# Elaboration work allowed to one request (one network, or every network of a file for
# `archdsl check`), in units of about a microsecond of a laptop core (benchmarks/limits.py
# measures them): a statement, step or expression node costs 1, a layer 8 (it is also
# inferred and counted), a function call 15, a block call 70 (a scope, a frame, its arguments
# bound), an error 20. EfficientNet-B7 needs ~45,000; the whole of specs/efficientnet.arch
# ~213,000. The budget, and the layers allowed, are set so that the costliest spec is answered
# in about a second even on a slow machine (the 2-core VM of the benchmarks runs plain Python
# at a third of a laptop's speed).
MAX_WORK = 500_000
LAYER_WORK = 8
# Work on values is metered by size: building, copying or comparing this many list items or
# characters costs one unit (a list of a million items: 15,625 units).
ITEMS_PER_WORK = 64
FUNCTION_CALL_WORK = 15
BLOCK_CALL_WORK = 70
ERROR_WORK = 20  # an error reported: its message, notes and suggestion are built

# Python frames the recursive parts (the parser's transformer, the evaluator) may use, so that
# the limits above, not Python's default of 1,000, decide what is too deep.
RECURSION_LIMIT = 20_000


@contextlib.contextmanager
def deep_recursion():
    """Raise Python's recursion limit to RECURSION_LIMIT for the duration."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, RECURSION_LIMIT))
    try:
        yield
    finally:
        sys.setrecursionlimit(before)
