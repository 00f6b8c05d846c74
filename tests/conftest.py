import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

SPECS = ROOT / "specs"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one process per core (pytest-xdist). Each takes one thread for torch,
    # set before torch is imported, and so do the commands it starts: with torch's default of
    # a thread per core in every process, their threads wait on one another and the suite
    # took 10:52 on two cores instead of 6:38.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_sessionstart(session):
    """archdsl's sources byte-compiled once, as pip compiles an installed package's: the
    suite starts Python processes for commands, runners and servers (about 60), and under
    PYTHONDONTWRITEBYTECODE (set on the project's machines) each compiled archdsl anew."""
    import compileall

    compileall.compile_dir(ROOT / "archdsl", quiet=2)


@pytest.fixture
def spec_text():
    """Load spec text (dedented) as an archdsl.Spec."""
    import textwrap

    import archdsl

    def load(text: str):
        return archdsl.load(textwrap.dedent(text).strip() + "\n")

    return load
