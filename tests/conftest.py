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


def saved_tokenizer(folder):
    """A byte-level BPE tokenizer as GPT-2's (tokenizers, trained here on a line of English
    and Korean: 298 tokens), written as Hugging Face writes a model's tokenizer."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(
        ["the quick brown fox jumps over the lazy dog 신경망"] * 50,
        trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer,
                                                eos_token="<|endoftext|>")
    fast.save_pretrained(folder)
    return fast


def exported_generate(checkpoint, class_name: str, prompt: str, count: int) -> str:
    """Greedy text from the .py that `archdsl compile CHECKPOINT -o X.py` writes, run without
    archdsl: its own network class and `generate`, with the checkpoint's weights."""
    import archdsl
    from archdsl.cli import main

    source = checkpoint.with_suffix(".py")
    assert main(["compile", str(checkpoint), "-o", str(source)]) == 0
    namespace = {"__name__": "exported"}
    exec(compile(source.read_text(), source.name, "exec"), namespace)
    model = namespace[class_name]()
    model.load_state_dict(archdsl.load(checkpoint).state_dict)
    return namespace["generate"](model, prompt, count, temperature=0)
