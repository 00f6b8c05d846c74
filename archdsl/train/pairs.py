"""Pairs of texts for sequence-to-sequence models (--task seq2seq: a network of two token
inputs, a source and a target, that scores the next target token at each target position,
as the Transformer of specs/transformer.arch):

    reverse           strings of letters and their reverses, generated and seeded: no
                      download, the default for seq2seq (a classic first task: it needs
                      attention from each target position to a distant source position)
    pairs:PATH        a UTF-8 file of one pair per line, the source, a tab, then the target
                      (the layout of Tatoeba's and ManyThings' translation pairs); its last
                      10% is the test set

Each pair becomes the network's two inputs and its labels (train/text.py Pairs: one token per
character after three special ones): the source padded to the network's source length, the
target the decoder reads — BEGIN, then the target — padded to its target length, and as
labels the target followed by END, padding not scored. The two inputs are held as one row
(source, then target) that the task splits (tasks.Seq2Seq.inputs).
"""

from __future__ import annotations

import torch

from .data import DataError, ImageData, Splits, _split_index, read_text
from .text import Pairs

MAX_PAIRS_BYTES = 64 * 2 ** 20  # the file, held in memory
# ... and its rows of ids (4 bytes each; a pair of a few characters takes the network's whole
# source and target lengths, twice the target's): a file of short lines for a long context
# would otherwise ask for many times its size
MAX_ROW_BYTES = 2 ** 30
GENERATED_PAIRS = 4096  # the training pairs of `reverse` (the test set: an eighth of it)
REVERSE_LETTERS = "abcdefghijklmnopqrstuvwxyz"


class PairData(ImageData):
    """Pairs as rows of token ids: `images` (N, source + target length), the network's two
    inputs side by side; `labels` (N, target length), the tokens to predict (PAD: none)."""


def pair_splits(name: str, lengths: tuple[int, int], *, val_split: float, seed: int,
                count: int | None, characters=None, whole: bool = False) -> Splits:
    """Train, validation and test splits of `reverse` or `pairs:PATH` for a network whose
    source and target take `lengths` positions. `characters`: a trained model's vocabulary
    (None: the pairs' own characters, sorted). `count`: the training pairs of `reverse`."""
    if name == "reverse":
        count = count or GENERATED_PAIRS
        longest = max(1, min(lengths[0], lengths[1] - 1, 16))
        train = _reverse(count, longest, seed=0)
        test = _reverse(max(count // 8, 16), longest, seed=1)
        test_from = "generated apart, seeded"
        where = "reverse"
    else:
        path = name.split(":", 1)[1]
        if not path:
            raise DataError("pairs: needs a file: --data pairs:PATH")
        every = _read_pairs(path)
        if len(every) < 2:
            raise DataError(f"pairs: {path} holds {len(every)} pair{'s' if len(every) != 1 else ''}"
                            f"; give at least 2 (one to train on, one to test)")
        cut = len(every) - max(1, len(every) // 10)
        train, test = every[:cut], every[cut:]
        test_from = "its last 10%"
        where = f"pairs: {path}"
    if characters is None:
        characters = sorted({c for pair in train + test for text in pair for c in text})
    vocabulary = Pairs(characters)
    if whole:
        data = _encode(name, train + test, vocabulary, lengths, where)
        return Splits(data, None, data, [], [], "all of it", unit="pairs")
    val = None
    if val_split > 0:
        val_index, train_index = _split_index(len(train), val_split, seed=seed)
        val = [train[i] for i in val_index.tolist()]
        train = [train[i] for i in train_index.tolist()]
        if not train:
            raise DataError(f"{where} holds too few pairs to hold {val_split:.0%} out for "
                            "validation: give more, or --val-split 0")
    return Splits(_encode(name, train, vocabulary, lengths, where),
                  _encode(name, val, vocabulary, lengths, where) if val else None,
                  _encode(name, test, vocabulary, lengths, where), [], [], test_from,
                  unit="pairs")


def _reverse(n: int, longest: int, seed: int) -> list[tuple[str, str]]:
    """`n` strings of 1 to `longest` letters, each paired with its reverse."""
    generator = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, longest + 1, (n,), generator=generator).tolist()
    letters = torch.randint(0, len(REVERSE_LETTERS), (n, longest), generator=generator).tolist()
    pairs = []
    for size, row in zip(sizes, letters):
        text = "".join(REVERSE_LETTERS[i] for i in row[:size])
        pairs.append((text, text[::-1]))
    return pairs


def _read_pairs(path: str) -> list[tuple[str, str]]:
    text = read_text(path, "pairs", MAX_PAIRS_BYTES)
    pairs = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line:
            continue  # blank lines (and the file's last newline) hold no pair
        if "\t" not in line:
            raise DataError(f"pairs: {path} line {number:,} has no tab: each line is a "
                            f"source, a tab, then its target")
        source, target = line.split("\t", 1)
        pairs.append((source, target))
    return pairs


def _encode(name: str, pairs, vocabulary: Pairs, lengths: tuple[int, int],
            where: str) -> PairData:
    source_length, target_length = lengths
    size = len(pairs) * (source_length + 2 * target_length) * 4
    if size > MAX_ROW_BYTES:
        raise DataError(f"{where}: {len(pairs):,} pairs at the network's {source_length:,} + "
                        f"{target_length:,} positions take {size / 2 ** 30:.1f} GiB of token "
                        f"ids, more than the {MAX_ROW_BYTES // 2 ** 30} GiB held in memory; "
                        "give fewer pairs, or train shorter sequences (--set context=N)")
    rows = torch.full((len(pairs), source_length + target_length), Pairs.PAD, dtype=torch.int32)
    labels = torch.full((len(pairs), target_length), Pairs.PAD, dtype=torch.int32)
    rows[:, source_length] = Pairs.BEGIN
    for i, (source, target) in enumerate(pairs):
        what = f"{where}, pair {i + 1:,}" if name == "reverse" else where
        source_ids = vocabulary.encode(source, what)
        target_ids = vocabulary.encode(target, what)
        if len(source_ids) > source_length or len(target_ids) + 1 > target_length:
            long, size, limit = (("source", len(source_ids), source_length)
                                 if len(source_ids) > source_length else
                                 ("target", len(target_ids), target_length - 1))
            raise DataError(f"{where}: the {long} {_quote(source if long == 'source' else target)}"
                            f" is {size:,} characters, more than the {limit:,} the network "
                            f"reads" + (" (its target also holds the end token)"
                                        if long == "target" else "")
                            + "; train longer sequences (--set context=N) or leave such "
                            "pairs out")
        if source_ids:
            rows[i, :len(source_ids)] = torch.tensor(source_ids, dtype=torch.int32)
        rows[i, source_length + 1:source_length + 1 + len(target_ids)] = \
            torch.tensor(target_ids, dtype=torch.int32)
        labels[i, :len(target_ids)] = torch.tensor(target_ids, dtype=torch.int32)
        labels[i, len(target_ids)] = Pairs.END
    return PairData(name, rows, labels, len(vocabulary), list(vocabulary.characters))


def _quote(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")
