import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

SPECS = ROOT / "specs"


@pytest.fixture
def spec_text():
    """Load spec text (dedented) as an archdsl.Spec."""
    import textwrap

    import archdsl

    def load(text: str):
        return archdsl.load(textwrap.dedent(text).strip() + "\n")

    return load
