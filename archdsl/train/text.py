"""Text for language models: characters to token ids and back (the vocabulary a run trained
with, recorded in its checkpoints as `preprocess.classes`), and sampling a continuation of a
prompt from a trained model, one token at a time (`archdsl generate`, and the sample a run
writes when it ends).

A network reads at most its context (the positions its input was written with): a longer
text keeps its last `context` characters. Most language models take any shorter sequence too
(a recurrent network; a GPT, whose position embedding holds `context` positions and adds the
first L): a short prompt is fed as it is. One that takes exactly its context (`param`
position vectors, added whole) gets the prompt padded on the right, and its scores are read
at the prompt's last character: a language model sees no later position (train/tasks.py
refuses one that could), so the padding changes nothing before it.
"""

from __future__ import annotations

import torch

from .data import DataError


def encode(text: str, vocabulary, what: str = "the text") -> list[int]:
    """Token ids of `text`; DataError naming the characters the vocabulary lacks."""
    index = {c: i for i, c in enumerate(vocabulary)}
    unknown = sorted({c for c in text if c not in index})
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise DataError(f"{len(unknown)} character{'s' if len(unknown) > 1 else ''} of "
                        f"{what} {'are' if len(unknown) > 1 else 'is'} not in the model's "
                        f"vocabulary of {len(vocabulary)} (the characters it trained on): "
                        f"{shown}")
    return [index[c] for c in text]


def decode(ids, vocabulary) -> str:
    return "".join(vocabulary[i] for i in ids)


class Characters:
    """The vocabulary of a text archdsl trained on: one token per character."""

    def __init__(self, characters):
        self.characters = tuple(characters)

    def __len__(self) -> int:
        return len(self.characters)

    def encode(self, text: str, what: str = "the text") -> list[int]:
        return encode(text, self.characters, what)

    def decode(self, ids) -> str:
        return decode(ids, self.characters)

    def default_prompt(self) -> str:
        """A new line, or for a text of one line its first character."""
        return "\n" if "\n" in self.characters else self.characters[0]


class Tokenizer:
    """A Hugging Face tokenizer (its tokenizer.json, read by the `tokenizers` package that
    transformers installs): the vocabulary of a model whose weights came from Hugging Face
    (`compile --weights huggingface:NAME`)."""

    def __init__(self, json_text: str, stop=()):
        from ..extras import available, install_hint

        if not available("tokenizers"):
            raise DataError("this language model reads text through a Hugging Face "
                            "tokenizer, which needs tokenizers: " + install_hint("tokenizers"))
        from tokenizers import Tokenizer as Reader

        self.json_text, self.stop = json_text, tuple(stop)
        try:
            self.reader = Reader.from_str(json_text)
        except Exception as error:  # a damaged record: the tokenizers package says why
            raise DataError(f"the model's tokenizer cannot be read ({error})") from None

    def __len__(self) -> int:
        return self.reader.get_vocab_size()

    def encode(self, text: str, what: str = "the text") -> list[int]:
        # with the tokens the model expects around a text, as transformers' tokenizer(text)
        # gives them (Llama's <s> before it; GPT-2's none)
        return self.reader.encode(text).ids

    def decode(self, ids) -> str:
        return self.reader.decode(list(ids))  # without special tokens (<s>, </s>)

    def default_prompt(self) -> str:
        return "\n"


class Pairs:
    """The vocabulary of a sequence-to-sequence model trained on pairs of texts (`--data
    pairs:PATH`, `reverse`): three special tokens, then one per character of the pairs.
    PAD fills a sequence up to the network's length (and is never scored), BEGIN starts the
    target the decoder reads, END closes the target it writes."""

    PAD, BEGIN, END = 0, 1, 2
    SPECIALS = 3

    def __init__(self, characters):
        self.characters = tuple(characters)

    def __len__(self) -> int:
        return self.SPECIALS + len(self.characters)

    def encode(self, text: str, what: str = "the text") -> list[int]:
        return [self.SPECIALS + i for i in encode(text, self.characters, what)]

    def decode(self, ids) -> str:
        return decode([i - self.SPECIALS for i in ids if i >= self.SPECIALS], self.characters)

    def default_prompt(self) -> str:
        return self.characters[0]


def vocabulary_of(preprocess) -> Characters | Tokenizer | Pairs:
    """The vocabulary a language model's record (train/preprocess.py) holds. DataError where
    its tokenizer cannot be read."""
    if preprocess.task == "seq2seq":
        return Pairs(preprocess.classes)
    return Tokenizer(preprocess.tokenizer, preprocess.stop) if preprocess.tokenizer else \
        Characters(preprocess.classes)


def check_token_ids(ids, net, what: str) -> None:
    """DataError where a tokenizer gave ids beyond the network's vocabulary (a tokenizer
    with more tokens than the network was written for)."""
    vocab = net.input_shape.vocab
    beyond = [i for i in ids if i >= vocab]
    if beyond:
        raise DataError(f"{what} reads as token ids up to {max(beyond)}, beyond the "
                        f"network's vocabulary of {vocab}: its tokenizer holds more tokens "
                        f"than the network was written for (--set vocab=N)")


class Streamed:
    """Token ids to text as they are drawn: what each new id adds to the text so far. A
    tokenizer may spread a character over several tokens (GPT-2's bytes): the text is held
    back while it ends in half a character."""

    def __init__(self, vocabulary, ids):
        self.vocabulary, self.ids = vocabulary, list(ids)
        self.shown = len(vocabulary.decode(self.ids))

    def add(self, token: int) -> str:
        self.ids.append(token)
        text = self.vocabulary.decode(self.ids)
        if text.endswith("\ufffd"):
            return ""
        new, self.shown = text[self.shown:], len(text)
        return new

    def rest(self) -> str:
        """What is still held back when the last id is drawn (half a character, shown as
        the tokenizer decodes it: U+FFFD), so that the whole equals decode(ids)."""
        text = self.vocabulary.decode(self.ids)
        rest, self.shown = text[self.shown:], len(text)
        return rest


@torch.no_grad()
def generate(model, ids: list[int], count: int, context: int, tokens: int, *,
             padded: bool = False, cached: bool = False, temperature: float = 0.8,
             top_k: int | None = None, seed: int = 0, device="cpu", on_token=None,
             stop=()) -> list[int]:
    """`count` more token ids after `ids` (at least one), each drawn from the model's scores
    at the last position, divided by `temperature` (0: always the top-scored token) and cut
    to the `top_k` best if given. `tokens`: the vocabulary's size; a network that scores
    more (a vocabulary set larger than the text's) never draws the ids beyond it. `padded`:
    the network takes exactly `context` positions (`reads_whole_context`). `cached`: it can
    read one new token at a time (`decodes_with_cache`): while the text fits its context,
    only the new token is fed and its attention layers keep the earlier keys and values;
    beyond the context every position moves, and the window is read whole each time.
    `on_token(id)` is called with each id as it is drawn (`archdsl generate` prints it).
    Writing ends early at an id of `stop` (the model's end of text), which is kept."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    ids = list(ids)
    x = torch.zeros(1, context, dtype=torch.long, device=device)
    with _Cache(model, cached) as cache:
        for _ in range(count):
            scores = _next_scores(model, ids, context, padded, cache, x, device)
            ids.append(_draw(scores[:tokens].float().cpu(), temperature, top_k, generator))
            if on_token is not None:
                on_token(ids[-1])
            if ids[-1] in stop:
                break
    return ids


class _Cache:
    """The caching state of a model's attention layers and position embeddings while it
    writes (a context manager that leaves the model as it was, whatever happens): `read` is
    how many of the ids they hold; `on` turns off past the context."""

    def __init__(self, model, on: bool):
        from ..backends.torch_modules import PositionEmbedding, PositionEncoding, SelfAttention

        self.attention = [m for m in model.modules() if isinstance(m, SelfAttention)]
        self.positions = [m for m in model.modules()
                          if isinstance(m, (PositionEmbedding, PositionEncoding))]
        self.on, self.read = on, 0
        for m in self.attention:
            m.cache = [] if on else None
        for m in self.positions:
            m.offset = 0 if on else None

    def stop(self):
        self.on = False
        for m in self.attention:
            m.cache = None
        for m in self.positions:
            m.offset = None

    def __enter__(self) -> "_Cache":
        return self

    def __exit__(self, *exc):
        self.stop()


def _next_scores(model, ids, context: int, padded: bool, cache: _Cache, x, device):
    """The model's scores for the token after `ids`."""
    if cache.on and len(ids) > context:
        cache.stop()  # every position moves from here on
    if cache.on:
        new = ids[cache.read:]
        cache.read = len(ids)
        out = model(torch.tensor([new], device=device))
        return (out[0] if isinstance(out, (tuple, list)) else out)[0, -1]
    window = ids[-context:]
    if padded:
        x.zero_()
        x[0, :len(window)] = torch.tensor(window, device=device)
    else:
        x = torch.tensor([window], device=device)
    out = model(x)
    return (out[0] if isinstance(out, (tuple, list)) else out)[0, len(window) - 1]


def pair_lengths(net, source: list[int], what: str, length: int | None = None):
    """The positions a sequence-to-sequence network reads of a source and writes of a target
    (at most `length` of those); DataError where `source` (token ids, `what` in messages) is
    longer than the network reads."""
    from .tasks import target_shape

    lengths = net.input_shape[0], target_shape(net)[0]
    if len(source) > lengths[0]:
        raise DataError(f"{what} is {len(source):,} characters, more than the {lengths[0]:,} "
                        f"the network reads as its source")
    return lengths[0], min(lengths[1], length or lengths[1])


@torch.no_grad()
def translate(model, source: list[int], lengths: tuple[int, int], tokens: int, *,
              temperature: float = 0.0, top_k: int | None = None, seed: int = 0,
              device="cpu", on_token=None) -> list[int]:
    """What a sequence-to-sequence model writes for `source` (token ids of a Pairs
    vocabulary, at most lengths[0]): the target's ids, one at a time from BEGIN, each drawn
    from the scores at the last position written (temperature 0: the top-scored), until END
    (not returned) or lengths[1] positions. The source and the target are padded to the
    network's lengths, as in training; the decoder is causal, so the padding after the last
    position does not change its scores. `tokens`: the vocabulary's size."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    x = torch.full((1, lengths[0]), Pairs.PAD, dtype=torch.long, device=device)
    x[0, :len(source)] = torch.tensor(source, device=device)
    y = torch.full((1, lengths[1]), Pairs.PAD, dtype=torch.long, device=device)
    y[0, 0] = Pairs.BEGIN
    written = []
    for position in range(lengths[1]):
        out = model(x, y)
        scores = (out[0] if isinstance(out, (tuple, list)) else out)[0, position]
        token = _draw(scores[:tokens].float().cpu(), temperature, top_k, generator)
        if token == Pairs.END:
            break
        written.append(token)
        if on_token is not None:
            on_token(token)
        if position + 1 < lengths[1]:
            y[0, position + 1] = token
    return written


def translations(model, net, data, characters, device, count: int = 10) -> str:
    """A run's sample: the first `count` pairs of `data` (train/pairs.py rows), each source
    with its target and what the model writes for it (greedily)."""
    vocabulary = Pairs(characters)
    lengths = (net.input_shape[0], data.labels.shape[1])
    lines = []
    for row, labels in zip(data.images[:count].tolist(), data.labels[:count].tolist()):
        source = [i for i in row[:lengths[0]] if i != Pairs.PAD]
        target = [i for i in labels if i >= Pairs.SPECIALS]
        written = translate(model, source, lengths, len(vocabulary), device=device)
        mark = "=" if written == target else "≠"
        lines.append(f"{vocabulary.decode(source)}\t{vocabulary.decode(written)}\t{mark} "
                     f"{vocabulary.decode(target)}")
    return "source\twritten\t(= or ≠) target\n" + "\n".join(lines) + "\n"


def _draw(scores, temperature: float, top_k: int | None, generator) -> int:
    """A token id from the scores: the top one at temperature 0, else drawn from the softmax
    of scores / temperature, among the `top_k` best if given."""
    if temperature == 0:
        return int(scores.argmax())
    scores = scores / temperature
    if top_k is not None and top_k < len(scores):
        cut = scores.topk(top_k).values[-1]
        scores = scores.masked_fill(scores < cut, float("-inf"))
    return int(torch.multinomial(scores.softmax(-1), 1, generator=generator))


def decodes_with_cache(net) -> bool:
    """Whether `net` can write a token at a time reading only the new token: every layer
    either acts on each position alone or keeps what earlier positions left (each layer
    kind's `decodes`: passes/decoding.py) — a GPT."""
    from ..passes.decoding import decodes_with_cache as graph_decodes

    return graph_decodes(net.graph)


def reads_whole_context(net) -> bool:
    """Whether `net` takes exactly the positions its spec was written with (passes/sizes.py),
    so that generating pads a shorter prompt."""
    from ..passes.sizes import size_dependent_layer

    return size_dependent_layer(net.graph) is not None


def sample(model, net, data, vocabulary, device, seed: int,
           prompt_length: int = 64, count: int = 400) -> str:
    """A sample for a run's end: the start of the first test window, and what the model
    writes after it."""
    if not hasattr(vocabulary, "decode"):  # the characters of a text
        vocabulary = Characters(vocabulary)
    context = net.input_shape[0]
    prompt = data.images[0][:max(1, min(prompt_length, context // 2))].tolist()
    ids = generate(model, prompt, count, context, len(vocabulary),
                   padded=reads_whole_context(net), cached=decodes_with_cache(net), seed=seed,
                   device=device)
    return vocabulary.decode(ids)
