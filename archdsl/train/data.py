"""Data sets for training, as tensors in memory, and the batch pipeline that fits them to a
network's input.

Small image data sets (digits, MNIST, CIFAR) are held whole in memory as uint8 tensors at
their own resolution. Each batch is converted on the training device: scaled to [0, 1],
normalised with the data set's mean and standard deviation, given the channels the network
wants (grey repeated to RGB), resized to the network's input (CIFAR's 32x32 to AlexNet's
227x227, as seed 001 does) and, when training, augmented with random crops (with padding) and
horizontal flips. Doing this per batch on the device keeps memory at the data set's own size
and the pipeline fast without loader processes.

    digits            scikit-learn's bundled 8x8 digits (1,797 images): no download, the default
    mnist, fashion-mnist, cifar10, cifar100
                      downloaded once into --data-dir, or read from there in the standard format
    fake              synthetic images of the network's input shape, for throughput
    imagefolder:PATH  one folder per class of image files (read with torchvision)

Segmentation data sets (--task segment) label each image with a mask of class indices:

    shapes            discs and squares on noise, generated at the network's input size and
                      seeded: no download, the default for segmentation
    masks:PATH        PATH/images/NAME and PATH/masks/NAME (a PNG of class indices, 255 for
                      pixels to ignore), as common segmentation data sets ship them; or
                      PATH/train/ and PATH/test/ each holding images/ and masks/

Pairs of texts (--task seq2seq, a network of a source and a target of token ids): `reverse`
(generated) and `pairs:PATH`, described in pairs.py.

Text (--task lm, a network that reads token ids and scores the next one at each position):

    text:PATH         a UTF-8 text file, one token per character (its vocabulary: the
                      characters it holds, sorted), cut into windows of the network's context
                      length; its last 10% is the test set (as nanoGPT's character models).
                      A model with a Hugging Face tokenizer (--init huggingface:NAME, or its
                      checkpoints) reads it through that tokenizer instead
"""

from __future__ import annotations

import math

import gzip
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..shapes import TOKENS
from .options import DATASETS, PAIRS_DATA
from .preprocess import fit_to_input, read_image, scale



class DataError(Exception):
    """A data set that cannot be had: the message says what to do."""


@dataclass
class ImageData:
    """A labelled image set in memory: images (N, C, H, W) uint8 (or float), labels (N,)."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: int
    class_names: list | None = None  # by label, where the data set names them

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> "ImageData":
        return ImageData(self.name, self.images[index], self.labels[index], self.classes,
                         self.class_names)


@dataclass
class Splits:
    train: ImageData
    val: ImageData | None
    test: ImageData
    mean: list[float]
    std: list[float]
    # where the test images come from, for the start line: "its own test set", "20% of
    # x/, held out (stratified, fixed seed)"
    test_from: str = "its own test set"
    unit: str = "images"  # or "sequences" (text: windows of token ids)

    def describe(self) -> str:
        """Which images each split holds: `1,234 train, 137 val (10% of train), 300 test
        (...)`."""
        val = f", {len(self.val):,} validation (held out of train)" if self.val else ""
        what = ("classes" if self.unit == "images" else
                "tokens in its vocabulary (3 special, and its characters)" if self.unit == "pairs"
                else "characters in its vocabulary"
                if isinstance(self.train.class_names, (list, tuple)) else "tokens in its tokenizer")
        return (f"{len(self.train):,} training {self.unit}{val}, {len(self.test):,} test "
                f"{self.unit} ({self.test_from}), {self.train.classes} {what}")


# ---- the data sets -------------------------------------------------------------------------

GENERATED_IMAGES = 4096  # the training images of `fake` and `shapes`, unless they are large
GENERATED_BYTES = 512 * 2 ** 20  # ... then as many as this holds (at least 64)


def generated_count(input_shape) -> int:
    """How many images `fake` and `shapes` make when --fake-size does not say: 4,096, or for
    large inputs as many as 512 MB hold (a 560x560 U-Net's 4,096 would take 3.9 GB, and
    minutes to generate), at least 64."""
    per_image = max(1, math.prod(input_shape))
    return max(64, min(GENERATED_IMAGES, GENERATED_BYTES // per_image))


def trained_classes(state: dict | None, task: str, data: str) -> list | None:
    """The names a checkpoint's model gives its outputs, for reading `data` as it was read
    in training: a language model's characters by token id, an image folder's classes (a
    folder holding fewer or other ones labels by the model's); None for other data sets,
    whose labels are fixed."""
    if state is None or not (task in ("lm", "seq2seq") or data.startswith("imagefolder:")):
        return None
    if task == "lm" and "tokenizer" in state.get("preprocess", {}):  # a Hugging Face model's
        from .text import Tokenizer

        return Tokenizer(state["preprocess"]["tokenizer"], state["preprocess"].get("stop", ()))
    return state.get("preprocess", {}).get("classes")


def load_splits(name: str, data_dir: Path, input_shape, *, val_split: float = 0.1,
                seed: int = 0, fake_size: int | None = None, download: bool = True,
                classes=None, whole: bool = False, target_shape=None) -> Splits:
    """Train, validation and test splits of a data set. The test split is the data set's own
    (or a fixed 20% for digits); the validation split is taken from the training set.
    `fake_size`: the training images of the generated sets (None: generated_count).
    `classes`: the names a trained model gives its outputs, by index — a text's characters
    by token id, an image folder's class folders — to read the data set's labels as (None:
    its own). `whole`: all of it, train and test together, as one split (`test`, and
    `train` for its classes; no validation split): `archdsl eval --split all`.
    `target_shape`: a sequence-to-sequence network's second input (pairs of texts)."""
    if name.startswith(PAIRS_DATA):
        from .pairs import pair_splits

        if target_shape is None:
            raise DataError(f"{name} holds pairs of texts, for a network of two token inputs "
                            "(a source and a target: --task seq2seq)")
        return pair_splits(name, (input_shape[0], target_shape[0]), val_split=val_split,
                           seed=seed, count=fake_size, characters=classes, whole=whole)
    test_from = "its own test set"
    if fake_size is None:
        fake_size = generated_count(input_shape)
    if name == "digits":
        full = _digits()
        test_index, train_index = _split_index(len(full), 0.2, seed=0, labels=full.labels)
        train, test = full.subset(train_index), full.subset(test_index)
        test_from = "20% held out, stratified, fixed"
    elif name in ("mnist", "fashion-mnist"):
        train, test = _idx_dataset(name, data_dir, download)
    elif name in ("cifar10", "cifar100"):
        train, test = _cifar(name, data_dir, download)
    elif name == "fake":
        train = _fake(fake_size, input_shape, seed)
        test = _fake(max(fake_size // 8, 64), input_shape, seed + 1)
    elif name.startswith("imagefolder:"):
        folder = name.split(":", 1)[1]
        if not folder:
            raise DataError("imagefolder: needs a folder: --data imagefolder:PATH")
        train, test, test_from = _image_folder(Path(folder), input_shape, classes)
    elif name == "shapes":
        train = _shapes(fake_size, input_shape, seed=0)
        test = _shapes(max(fake_size // 4, 16), input_shape, seed=1)
        test_from = "generated apart, seeded"
    elif name.startswith("masks:"):
        folder = name.split(":", 1)[1]
        if not folder:
            raise DataError("masks: needs a folder: --data masks:PATH")
        train, test, test_from = _mask_folder(Path(folder), input_shape)
    elif name.startswith("text:"):
        file = name.split(":", 1)[1]
        if not file:
            raise DataError("text: needs a file: --data text:PATH")
        return _text_splits(Path(file), input_shape, val_split, classes, whole)
    else:
        raise DataError(f"unknown data set `{name}`; choose one of: {', '.join(DATASETS)}")
    if whole:
        every = ImageData(train.name, torch.cat([train.images, test.images]),
                          torch.cat([train.labels, test.labels]),
                          max(train.classes, test.classes), train.class_names)
        return Splits(every, None, every, *_statistics(every.images), "all of it")
    val = None
    if val_split > 0:
        val_index, train_index = _split_index(len(train), val_split, seed=seed, labels=train.labels)
        train, val = train.subset(train_index), train.subset(val_index)
    mean, std = _statistics(train.images)
    return Splits(train, val, test, mean, std, test_from)


MAX_TEXT_BYTES = 256 * 2 ** 20  # a text data set is held in memory, 4 bytes per character


class TextData(ImageData):
    """A stretch of a text as token ids (`stream`), cut into windows of the network's context
    length that follow each other without overlap: `images` the windows, `labels` the same
    windows one character on (the next character at each position), as views of the stream.
    An epoch predicts each character once. `shifted(offset)`: the windows from another start,
    so that training sees every position of the text at every position of the window, not a
    fixed phase (nanoGPT draws random offsets)."""

    def __init__(self, name: str, stream: torch.Tensor, context: int, vocabulary: list,
                 offset: int = 0):
        self.stream, self.context = stream, context
        # the same number of windows from every offset below `context`
        count = (len(stream) - context) // context
        windows = stream[offset:offset + count * context + 1]
        super().__init__(name, windows[:-1].view(count, context),
                         windows[1:].unfold(0, context, context), len(vocabulary), vocabulary)

    def shifted(self, offset: int) -> "TextData":
        return TextData(self.name, self.stream, self.context, self.class_names, offset)


def read_text(path, kind: str, limit: int) -> str:
    """A UTF-8 file's text, for the data set `kind` (text:, pairs:); DataError where it is
    missing, unreadable, larger than `limit` bytes or not UTF-8."""
    path = Path(path)
    try:
        if not path.is_file():
            raise DataError(f"{kind}: {path} is not a file" if path.exists() else
                            f"{kind}: {path} does not exist")
        size = path.stat().st_size
        if size > limit:
            raise DataError(f"{kind}: {path} holds {size:,} bytes; {kind} data sets are held "
                            f"in memory, up to {limit:,} bytes")
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{kind}: cannot read {path}: {error.strerror or error}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{kind}: {path} is not UTF-8 text (byte {error.start:,} is "
                        f"{data[error.start]:#04x})") from None


def _text_splits(path: Path, input_shape, val_split: float, vocabulary=None,
                 whole: bool = False) -> Splits:
    """A text file as token ids, split by position as nanoGPT does: the first 90% trains
    (its last `val_split` held out for validation), the rest tests; `whole`: all of it as
    one split. The ids are of `vocabulary` if given (a trained model's characters, or its
    Hugging Face tokenizer: train/text.py), else of the text's own characters, sorted."""
    context = input_shape[0]
    own = vocabulary is None  # a new run's: its context can still change
    text = read_text(path, "text", MAX_TEXT_BYTES)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    if hasattr(vocabulary, "encode"):  # a tokenizer (train/text.py Tokenizer): its ids
        ids = np.array(vocabulary.encode(text), dtype=np.int64)
    elif vocabulary is None:
        alphabet, ids = np.unique(codes, return_inverse=True)
        vocabulary = [chr(c) for c in alphabet.tolist()]
    else:
        alphabet = np.array([ord(c) for c in vocabulary], dtype=np.uint32)
        order = np.argsort(alphabet)
        where = np.searchsorted(alphabet[order], codes).clip(max=max(len(alphabet) - 1, 0))
        known = alphabet[order][where] == codes
        if not known.all():
            unknown = sorted({chr(c) for c in codes[~known][:100_000].tolist()})
            raise DataError(f"text: {path} holds characters the model's vocabulary (the "
                            f"text it trained on) lacks: "
                            + ", ".join(repr(c) for c in unknown[:10])
                            + (" ..." if len(unknown) > 10 else ""))
        ids = order[where]
    stream = torch.from_numpy(ids.astype(np.int32).reshape(-1))
    unit = "tokens" if hasattr(vocabulary, "encode") else "characters"
    name = f"text:{path}"
    if whole:
        if len(stream) < 2 * context:
            raise DataError(f"text: {path} holds {len(stream):,} {unit}, too few for windows "
                            f"of {context:,}: give a text of at least {2 * context:,}")
        every = TextData(name, stream, context, vocabulary)
        return Splits(every, None, every, [], [], "all of it", unit="sequences")
    train_end = int(len(stream) * 0.9)
    val_start = train_end - int(train_end * val_split)
    parts = {"train": stream[:val_start], "validation": stream[val_start:train_end],
             "test": stream[train_end:]}
    # each part holds at least one window and the characters after it (TextData)
    shares = {"train": 0.9 * (1 - val_split), "validation": 0.9 * val_split, "test": 0.1}
    for what, part in parts.items():
        if len(part) < 2 * context and (what != "validation" or val_split > 0):
            least = max(math.ceil(2 * context / share) for share in shares.values() if share)
            raise DataError(
                f"text: {path} holds {len(stream):,} {unit}, too few for windows of "
                f"{context:,}: its {what} part ({shares[what]:.0%} of it) needs "
                f"{2 * context:,}; give a text of at least {least:,} {unit}"
                + (", or train a shorter context (--set context=...)" if own else ""))
    val = TextData(name, parts["validation"], context, vocabulary) if val_split > 0 else None
    return Splits(TextData(name, parts["train"], context, vocabulary), val,
                  TextData(name, parts["test"], context, vocabulary), [], [],
                  "its last 10%", unit="sequences")


def _split_index(n: int, fraction: float, seed: int, labels=None):
    """A random split, stratified by class labels if given (not by masks): (index of the
    fraction, index of the rest)."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    if labels is None or labels.dim() > 1:
        cut = int(round(n * fraction))
        return order[:cut], order[cut:]
    picked, rest = [], []
    for c in torch.unique(labels):
        members = order[labels[order] == c]
        cut = int(round(len(members) * fraction))
        picked.append(members[:cut])
        rest.append(members[cut:])
    return torch.cat(picked).sort().values, torch.cat(rest).sort().values


def _statistics(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of images scaled to [0, 1]."""
    x = images[:10_000].float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return mean.tolist(), std.tolist()


def _digits() -> ImageData:
    from ..extras import MissingExtra, require

    try:
        require("sklearn", "the digits data set")
    except MissingExtra as error:
        raise DataError(str(error)) from None
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy((digits.images * (255.0 / 16.0)).round().astype(np.uint8))
    return ImageData("digits", images.unsqueeze(1), torch.from_numpy(digits.target).long(), 10)


def _fake(n: int, input_shape, seed: int) -> ImageData:
    generator = torch.Generator().manual_seed(seed)
    shape = tuple(input_shape) if len(input_shape) == 3 else (1, 1, input_shape[0])
    images = torch.randint(0, 256, (n, *shape), generator=generator, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=generator)
    return ImageData("fake", images, labels, 10)


SHAPE_CLASSES = ["background", "disc", "square"]


def _shapes(n: int, input_shape, seed: int) -> ImageData:
    """`n` images of the network's input size: noise, with one to three discs and squares,
    brighter than the noise and each kind in its own range of brightness (the same on every
    channel); the mask holds each pixel's class (0 background, 1 disc, 2 square)."""
    if len(input_shape) != 3:
        raise DataError("shapes are images: the network must take a CxHxW input")
    channels, height, width = input_shape
    generator = torch.Generator().manual_seed(seed)
    # bytes from the start: a float copy of the set would take four times the memory
    images = torch.randint(0, 90, (n, 1, height, width), generator=generator, dtype=torch.uint8)
    masks = torch.zeros(n, height, width, dtype=torch.uint8)  # made long per batch
    rows = torch.arange(height).view(-1, 1)
    cols = torch.arange(width).view(1, -1)
    small = max(min(height, width) // 8, 2)
    for i in range(n):
        for _ in range(int(torch.randint(1, 4, (1,), generator=generator))):
            kind = int(torch.randint(1, 3, (1,), generator=generator))
            size = int(torch.randint(small, max(min(height, width) // 3, small + 1), (1,),
                                     generator=generator))
            cy = int(torch.randint(0, height, (1,), generator=generator))
            cx = int(torch.randint(0, width, (1,), generator=generator))
            if kind == 1:
                inside = (rows - cy) ** 2 + (cols - cx) ** 2 <= size ** 2
            else:
                inside = ((rows - cy).abs() <= size) & ((cols - cx).abs() <= size)
            low = 200 if kind == 1 else 130
            level = torch.randint(low, low + 50, (1,), generator=generator).float()
            noise = torch.randint(-10, 11, (height, width), generator=generator).float()
            images[i, 0][inside] = (level + noise)[inside].clamp(0, 255).to(torch.uint8)
            masks[i][inside] = kind
    images = images.expand(-1, channels, -1, -1).contiguous()
    return ImageData("shapes", images, masks, len(SHAPE_CLASSES), list(SHAPE_CLASSES))



def _mask_folder(path: Path, input_shape):
    """Images and masks of the same names: (train, test, where the test images come from).
    PATH/images + PATH/masks (20% held out as the test set, the same every run), or
    PATH/train/{images,masks} and PATH/test/{images,masks}."""
    if not path.is_dir():
        raise DataError(f"masks: {path} is not a folder")
    if (path / "train").is_dir():
        if not (path / "test").is_dir():
            raise DataError(f"masks: {path} has a train/ folder but no test/ folder beside it")
        train = _read_mask_folder(path / "train", input_shape)
        test = _read_mask_folder(path / "test", input_shape)
        return train, test, f"{path / 'test'}"
    data = _read_mask_folder(path, input_shape)
    test_index, train_index = _split_index(len(data), 0.2, seed=0)
    return (data.subset(train_index), data.subset(test_index),
            f"20% of {path} held out, fixed")


def _read_mask_folder(folder: Path, input_shape) -> ImageData:
    from PIL import Image

    from .predict import IMAGE_SUFFIXES

    if len(input_shape) != 3:
        raise DataError("masks: the network must take a CxHxW image")
    channels, height, width = input_shape
    for sub in ("images", "masks"):
        if not (folder / sub).is_dir():
            raise DataError(f"masks: {folder} needs an images/ and a masks/ folder "
                            f"(no {sub}/)")
    masks = {p.stem: p for p in (folder / "masks").iterdir() if p.suffix.lower() == ".png"}
    images, labels = [], []
    for file in sorted((folder / "images").iterdir()):
        if file.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if file.stem not in masks:
            raise DataError(f"masks: {file} has no mask ({folder / 'masks' / file.stem}.png)")
        try:
            images.append(read_image(file, channels, (height, width)))
            with Image.open(masks[file.stem]) as mask:
                if mask.mode not in ("L", "P", "1", "I;16", "I"):
                    raise ValueError(f"a mask is one channel of class indices, not {mask.mode}")
                mask = mask.convert("L") if mask.mode in ("P", "1") else mask
                mask = mask.resize((width, height), Image.Resampling.NEAREST)
                values = np.asarray(mask)
                if values.max(initial=0) > IGNORE:
                    raise ValueError(f"a mask value is {values.max()}: class indices go up to "
                                     f"254 (255: ignored)")
                labels.append(torch.from_numpy(values.astype(np.uint8)))
        except (OSError, ValueError, SyntaxError) as error:
            reason = ("not an image file, or a damaged one"
                      if type(error).__name__ == "UnidentifiedImageError" else str(error))
            raise DataError(f"masks: cannot read {file.name} or its mask: {reason}") from None
    if not images:
        raise DataError(f"masks: {folder / 'images'} holds no images")
    x = torch.stack(images)
    y = torch.stack(labels)
    valid = y[y != IGNORE]
    classes = int(valid.max()) + 1 if valid.numel() else 1
    return ImageData(f"masks:{folder}", x, y, max(classes, 2))


IGNORE = 255  # the mask value of pixels no class is given for (as Pascal VOC's borders)


# ---- standard formats ----------------------------------------------------------------------

_SOURCES = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "MNIST/raw"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                      "FashionMNIST/raw"),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-batches-py"),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "cifar-100-python"),
}
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _missing(name: str, folder: Path, error: Exception | None) -> DataError:
    url, _ = _SOURCES[name]
    why = f" (the download failed: {error})" if error else ""
    return DataError(
        f"the {name} data set is not in {folder}{why}.\n"
        f"On a machine with internet access archdsl downloads it there by itself; offline, "
        f"download {url} elsewhere and unpack it so that {folder} holds its files, or point "
        f"--data-dir at a folder that has them.")


def _download(name: str, root: Path) -> None:
    import torchvision.datasets as known
    from torchvision.datasets.utils import download_and_extract_archive, download_url

    # every file is checked against the MD5 that torchvision's own dataset classes publish
    url, sub = _SOURCES[name]
    if name.startswith("cifar"):
        md5 = (known.CIFAR10 if name == "cifar10" else known.CIFAR100).tgz_md5
        download_and_extract_archive(url, str(root), filename=url.rsplit("/", 1)[1], md5=md5)
    else:
        md5s = dict((known.MNIST if name == "mnist" else known.FashionMNIST).resources)
        for base in _IDX_FILES:
            download_url(url + base + ".gz", str(root / sub), filename=base + ".gz",
                         md5=md5s[base + ".gz"])


def _ensure(name: str, root: Path, present, download: bool) -> Path:
    folder = root / _SOURCES[name][1]
    if present(folder):
        return folder
    error = None
    if download:
        try:
            _download(name, root)
        except Exception as e:  # no network, a proxy, a full disk: say what to do instead
            error = e
    if not present(folder):
        raise _missing(name, folder, error)
    return folder


def _open_maybe_gz(folder: Path, base: str):
    if (folder / base).exists():
        return open(folder / base, "rb")
    return gzip.open(folder / (base + ".gz"), "rb")


def _read_idx(stream) -> np.ndarray:
    data = stream.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def _idx_dataset(name: str, root: Path, download: bool):
    def present(folder):
        return all((folder / b).exists() or (folder / (b + ".gz")).exists() for b in _IDX_FILES)

    folder = _ensure(name, root, present, download)
    arrays = []
    for base in _IDX_FILES:
        with _open_maybe_gz(folder, base) as f:
            arrays.append(_read_idx(f))
    train_x, train_y, test_x, test_y = (torch.from_numpy(a.copy()) for a in arrays)
    names = FASHION_CLASSES if name == "fashion-mnist" else None
    return (ImageData(name, train_x.unsqueeze(1), train_y.long(), 10, names),
            ImageData(name, test_x.unsqueeze(1), test_y.long(), 10, names))


# The class names the data sets' documentation gives, by label (digits and MNIST: the digit)
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]


class _ArrayUnpickler(pickle.Unpickler):
    """CIFAR's batches are pickles; allow only what they contain (dicts, lists, arrays)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a data file")


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        return _ArrayUnpickler(io.BytesIO(f.read()), encoding="latin1").load()


def _cifar(name: str, root: Path, download: bool):
    if name == "cifar10":
        train_files = [f"data_batch_{i}" for i in range(1, 6)]
        test_files, key, classes = ["test_batch"], "labels", 10
    else:
        train_files, test_files, key, classes = ["train"], ["test"], "fine_labels", 100

    def present(folder):
        return all((folder / f).exists() for f in train_files + test_files)

    folder = _ensure(name, root, present, download)
    names = CIFAR10_CLASSES if name == "cifar10" else _cifar100_names(folder)

    def read(files):
        images, labels = [], []
        for f in files:
            batch = _unpickle(folder / f)
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(batch[key])
        return ImageData(name, torch.from_numpy(np.concatenate(images)),
                         torch.tensor(labels, dtype=torch.long), classes, names)

    return read(train_files), read(test_files)


def _cifar100_names(folder: Path) -> list | None:
    """CIFAR-100's fine label names, from its `meta` file (None if it has none)."""
    try:
        names = _unpickle(folder / "meta").get("fine_label_names")
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
        return None
    return [str(n) for n in names] if isinstance(names, list) and len(names) == 100 else None


def _image_folder(path: Path, input_shape, classes=None):
    """Class-per-folder images, read once and resized to the network's input: (train, test,
    where the test images come from). Layouts, as common data sets ship them:

        PATH/train/CLASS/*, PATH/test/CLASS/*   the test set is test/ (a val/ is ignored)
        PATH/train/CLASS/*, PATH/val/CLASS/*    no test/: val/ is the held-out test set
        PATH/CLASS/*  (or PATH/train/ alone)    20% of each class is held out as the test
                                                set (stratified, the same every run)

    The validation split (--val-split) is always taken from the training images. `classes`:
    a trained model's class names, by output index, to label the images with."""
    if not path.is_dir():
        raise DataError(f"imagefolder: {path} is not a folder of class folders")
    train_folder = path / "train" if (path / "train").is_dir() else path
    held = next((path / name for name in ("test", "val") if (path / name).is_dir()), None)
    if train_folder == path and any((path / name).is_dir() for name in ("test", "val")):
        raise DataError(f"imagefolder: {path} has a {held.name}/ folder but no train/ folder "
                        "beside it")
    unknown = "the model was not trained on" if classes is not None else \
        "the training images do not"
    train = _read_image_folder(train_folder, input_shape, path, classes, unknown)
    if held is None:
        test_index, train_index = _split_index(len(train), 0.2, seed=0, labels=train.labels)
        where = f"20% of {train_folder} held out, stratified, fixed"
        return train.subset(train_index), train.subset(test_index), where
    test = _read_image_folder(held, input_shape, path, train.class_names, unknown)
    return train, test, f"{held}"


def _read_image_folder(folder: Path, input_shape, path: Path, classes=None,
                       unknown: str = "the training images do not") -> ImageData:
    """One folder of class folders. A test folder must have the training set's classes
    (a class it lacks is fine, one it adds is not: its label would mean nothing); so must a
    folder a trained model is evaluated on, its classes."""
    from torchvision import datasets, transforms

    channels, height, width = input_shape
    mode = "L" if channels == 1 else "RGB"
    transform = transforms.Compose([transforms.Lambda(lambda im: im.convert(mode)),
                                    transforms.Resize((height, width)), transforms.PILToTensor()])
    try:
        data = datasets.ImageFolder(str(folder), transform=transform)
    except (FileNotFoundError, RuntimeError, OSError) as error:
        raise DataError(f"imagefolder: {error}") from None
    targets = list(data.targets)
    if classes is not None:
        extra = sorted(set(data.classes) - set(classes))
        if extra:
            raise DataError(f"imagefolder: {folder} has classes {unknown}: "
                            + ", ".join(extra[:5]))
        index = {name: i for i, name in enumerate(classes)}
        targets = [index[data.classes[t]] for t in targets]
    images = []
    for i, (file, _) in enumerate(data.samples):
        try:
            images.append(data[i][0])
        except (OSError, ValueError, SyntaxError) as error:  # PIL: not an image, truncated
            reason = ("not an image file, or a damaged one"
                      if type(error).__name__ == "UnidentifiedImageError" else str(error))
            raise DataError(f"imagefolder: cannot read {file}: {reason}") from None
    if not images:
        raise DataError(f"imagefolder: {folder} holds no images")
    names = list(classes) if classes is not None else list(data.classes)
    return ImageData(f"imagefolder:{path}", torch.stack(images),
                     torch.tensor(targets, dtype=torch.long), len(names), names)


# ---- batches -------------------------------------------------------------------------------

class BatchPipeline:
    """Turns a batch of stored images into the network's input, on the training device."""

    def __init__(self, input_shape, mean, std, *, augment: bool, crop_padding: int = 4,
                 flip: bool = True, channels_last: bool = False):
        self.shape = tuple(input_shape)
        self.tokens = getattr(input_shape, "layout", None) == TOKENS  # text: ids as they are
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)
        self._moments = {}  # device -> (mean, std) there, copied once
        self.augment = augment
        self.crop_padding = crop_padding
        self.flip = flip
        self.channels_last = channels_last

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None,
                 masks: torch.Tensor | None = None):
        """The network's input; with `masks` (segmentation's, one class per pixel, at the
        images' size), the input and the masks moved by the same crops and flips."""
        if self.tokens:
            return images.long()
        x = scale(images)
        # a copy from the host waits for the GPU to finish its queue: once per device, not
        # at every batch, or the CPU could never run ahead of the GPU
        if x.device not in self._moments:
            self._moments[x.device] = (self.mean.to(x.device), self.std.to(x.device))
        mean, std = self._moments[x.device]
        try:  # the same steps as a trained network's preprocessing (preprocess.py)
            x = fit_to_input(x, mean, std, self.shape)
        except ValueError as error:
            raise DataError(str(error)) from None
        if len(self.shape) == 1:
            return x if masks is None else (x, masks)
        if self.augment:
            x, masks = self._augment(x, generator, masks)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x if masks is None else (x, masks)

    def _augment(self, x, generator, masks=None):
        n, _, h, w = x.shape
        p = self.crop_padding
        # the random numbers come from a CPU generator (its state goes into checkpoints, so a
        # resumed run draws the same crops); they travel to the device in one copy that does
        # not wait for the GPU to finish its queue
        draws = torch.cat([torch.randint(0, 2 * p + 1, (2, n), generator=generator) if p > 0
                           else torch.zeros(2, n, dtype=torch.long),
                           (torch.rand(1, n, generator=generator) < 0.5).long() if self.flip
                           else torch.zeros(1, n, dtype=torch.long)])
        dy, dx, flips = _to_device(draws, x.device)
        if p > 0:  # a random crop of the zero-padded image, one offset per image
            padded = F.pad(x, (p, p, p, p))
            rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
            cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
            samples = torch.arange(n, device=x.device)[:, None, None, None]
            chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
            x = padded[samples, chans, rows, cols]
            if masks is not None:  # the padding is background
                masks = F.pad(masks, (p, p, p, p))[samples[:, 0], rows[:, 0], cols[:, 0]]
        if self.flip:
            x = torch.where(flips.bool().view(-1, 1, 1, 1), x.flip(3), x)
            if masks is not None:
                masks = torch.where(flips.bool().view(-1, 1, 1), masks.flip(2), masks)
        return x, masks


def _to_device(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":  # from pinned memory the copy is asynchronous
        values = values.pin_memory()
    return values.to(device, non_blocking=True)


def batches(data: ImageData, batch_size: int, *, shuffle: bool, seed: int = 0,
            drop_last: bool = False, rank: int = 0, world: int = 1, skip: int = 0):
    """(images, labels) batches in a deterministic order for (seed, epoch), split across
    `world` processes; `skip` leaves out the first batches (resuming mid-epoch)."""
    n = len(data)
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    else:
        order = torch.arange(n)
    if world > 1:  # interleaved, as DistributedSampler: step b's batches across processes
        usable = (n // world) * world if drop_last else n  # make up one global batch
        order = order[:usable][rank::world]
    count = len(order) // batch_size if drop_last else -(-len(order) // batch_size)
    order = order.to(data.images.device)  # once: each copy from the host waits for the GPU
    for b in range(skip, count):
        index = order[b * batch_size:(b + 1) * batch_size]
        yield data.images[index], data.labels[index]


def batch_count(data: ImageData, batch_size: int, drop_last: bool, world: int = 1) -> int:
    n = len(data) // world if world > 1 else len(data)
    return n // batch_size if drop_last else -(-n // batch_size)
