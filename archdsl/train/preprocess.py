"""How a raw image becomes a network's input: the preprocessing a run trained with, recorded in
its checkpoints and carried into exports, so that a `.pt`, a `.py` and an `.onnx` can each be
fed an image file and give the labels of the run's data set.

The steps, the same in training (BatchPipeline, without augmentation), in `archdsl predict`,
in an exported `.py` (its `preprocess` and `read_image`) and as an ONNX model's metadata:

    read      an image file, converted to grey (L) or RGB, in that channel order, and resized
              to the size the data set's images were held at (PIL's bilinear resize, as
              torchvision's Resize does for the image-folder data set)
    scale     uint8 pixel values to [0, 1]
    normalise per channel: (x - mean) / std, the training images' statistics
    channels  grey repeated to the network's three channels, or RGB averaged to its one
    resize    bilinearly to the network's input size, if the held size differs (digits'
              8x8 to LeNet's 32x32)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

KEY = "preprocess"  # in checkpoints, and the ONNX metadata key `archdsl.preprocess`
# GPT-2's tokenizer.json holds 1.4 million characters; a record far beyond that is damage
MAX_TOKENIZER_CHARACTERS = 64 * 2**20
MAX_STOP_IDS = 64  # Llama 3's end-of-text tokens are three


@dataclass(frozen=True)
class Preprocess:
    channels: int  # of the held images: 1 (grey) or 3 (RGB)
    size: tuple[int, int]  # (height, width) the images are held at
    mean: tuple[float, ...]  # per held channel, of values in [0, 1]
    std: tuple[float, ...]
    input_shape: tuple[int, ...]  # the network's input
    classes: tuple[str, ...]  # label names, by the network's output index
    data: str = ""  # the data set it comes from
    task: str = "classify"  # or "segment": a class per pixel; "lm": a language model;
    # "seq2seq": a source text in, a target text out
    # a language model's Hugging Face tokenizer (its tokenizer.json), in place of `classes`'
    # characters: a model whose weights came from Hugging Face (train/text.py Tokenizer)
    tokenizer: str = ""
    # the token ids that end a text (a Hugging Face model's eos_token_id): writing stops there
    stop: tuple[int, ...] = ()

    @classmethod
    def of_tokenizer(cls, tokenizer: str, input_shape, data: str,
                     stop=()) -> "Preprocess":
        """A language model's record that reads text through a Hugging Face tokenizer."""
        return cls(0, (0, 0), (), (), tuple(input_shape), (), data, "lm", tokenizer,
                   tuple(stop))

    @classmethod
    def of(cls, splits, input_shape, task: str = "classify") -> "Preprocess":
        """The preprocessing of a training run's data set (train/data.py Splits). A language
        model's is its vocabulary: `classes` holds the character of each token id."""
        if task in ("lm", "seq2seq"):
            names = splits.train.class_names
            if hasattr(names, "json_text"):  # a Hugging Face tokenizer (train/text.py)
                return cls.of_tokenizer(names.json_text, input_shape, splits.train.name,
                                        names.stop)
            return cls(0, (0, 0), (), (), tuple(input_shape), tuple(names),
                       splits.train.name, task)
        images = splits.train.images
        names = splits.train.class_names or [str(i) for i in range(splits.train.classes)]
        return cls(int(images.shape[1]), (int(images.shape[2]), int(images.shape[3])),
                   tuple(splits.mean), tuple(splits.std), tuple(input_shape),
                   tuple(str(n) for n in names), splits.train.name, task)

    def to_dict(self) -> dict:
        record = {"channels": self.channels, "size": list(self.size), "mean": list(self.mean),
                  "std": list(self.std), "input_shape": list(self.input_shape),
                  "classes": list(self.classes), "data": self.data, "task": self.task}
        if self.tokenizer:
            record["tokenizer"] = self.tokenizer
        if self.stop:
            record["stop"] = list(self.stop)
        return record

    @classmethod
    def from_dict(cls, value) -> "Preprocess":
        """From a checkpoint or a model's metadata: untrusted data, checked (ValueError says
        what is wrong)."""
        if not isinstance(value, dict):
            raise ValueError("`preprocess` must be a table")

        def ints(key, length=None):
            v = value.get(key)
            if not (isinstance(v, list) and v and all(type(d) is int and d > 0 for d in v)
                    and (length is None or len(v) == length)):
                raise ValueError(f"`preprocess.{key}` must be a list of positive whole numbers")
            return tuple(v)

        def numbers(key, count, positive=False):
            v = value.get(key)
            if not (isinstance(v, list) and len(v) == count and all(
                    type(n) in (int, float) and math.isfinite(n) and (n > 0 or not positive)
                    for n in v)):
                raise ValueError(f"`preprocess.{key}` must be {count} finite numbers")
            return tuple(float(n) for n in v)

        task = value.get("task", "classify")
        if task not in ("classify", "segment", "lm", "seq2seq"):
            raise ValueError("`preprocess.task` must be classify, segment, lm or seq2seq")
        if task == "lm" and "tokenizer" in value:  # a Hugging Face tokenizer's JSON
            tokenizer, data = value["tokenizer"], value.get("data", "")
            if not (isinstance(tokenizer, str) and tokenizer.startswith("{")
                    and len(tokenizer) <= MAX_TOKENIZER_CHARACTERS):
                raise ValueError("`preprocess.tokenizer` must be a tokenizer's JSON text")
            stop = value.get("stop", [])
            if not (isinstance(stop, list) and len(stop) <= MAX_STOP_IDS
                    and all(type(i) is int and i >= 0 for i in stop)):
                raise ValueError(f"`preprocess.stop` must be a list of at most {MAX_STOP_IDS} "
                                 f"token ids")
            return cls.of_tokenizer(tokenizer, ints("input_shape"),
                                    data if isinstance(data, str) else "", stop)
        if task in ("lm", "seq2seq"):  # a vocabulary: one character per token id (seq2seq:
            # after the three special tokens, train/text.py Pairs)
            vocabulary = value.get("classes")
            if not (isinstance(vocabulary, list) and vocabulary and len(set(vocabulary)) ==
                    len(vocabulary) and all(isinstance(c, str) and len(c) == 1
                                            for c in vocabulary)):
                raise ValueError("`preprocess.classes` must be a vocabulary of distinct "
                                 "characters")
            data = value.get("data", "")
            return cls(0, (0, 0), (), (), ints("input_shape"), tuple(vocabulary),
                       data if isinstance(data, str) else "", task)
        channels = value.get("channels")
        if channels not in (1, 3):
            raise ValueError("`preprocess.channels` must be 1 or 3")
        classes = value.get("classes")
        if not (isinstance(classes, list) and classes
                and all(isinstance(c, str) and len(c) <= 200 for c in classes)):
            raise ValueError("`preprocess.classes` must be a list of names")
        data = value.get("data", "")
        if not isinstance(data, str):
            raise ValueError("`preprocess.data` must be a name")
        return cls(channels, ints("size", 2), numbers("mean", channels),
                   numbers("std", channels, positive=True), ints("input_shape"),
                   tuple(classes), data, task)

    def read(self, path) -> torch.Tensor:
        """An image file as uint8 (C, H, W) at the held size. OSError or ValueError with the
        reason when it is no readable image."""
        return read_image(path, self.channels, self.size)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (N, C, H, W) at the held size → the network's input."""
        mean = torch.tensor(self.mean, device=images.device)
        std = torch.tensor(self.std, device=images.device)
        return fit_to_input(scale(images), mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1),
                            self.input_shape)


def read_image(path, channels: int, size) -> torch.Tensor:
    """An image file as uint8 (C, H, W): grey (1 channel) or RGB, resized bilinearly to
    `size` (height, width) as torchvision's Resize of a PIL image does. OSError or ValueError
    with the reason when it is no readable image (PIL refuses decompression bombs)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    height, width = size
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB").resize(
                (width, height), Image.Resampling.BILINEAR)
            array = np.asarray(image)
    except UnidentifiedImageError:
        raise ValueError("not an image file, or a damaged one") from None
    except (SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(str(error)) from None
    return torch.from_numpy(array.copy()).view(*array.shape[:2], -1).permute(2, 0, 1)


def scale(images: torch.Tensor) -> torch.Tensor:
    """Stored images as floats in [0, 1] (uint8 ones are divided by 255)."""
    x = images.float()
    return x / 255.0 if images.dtype == torch.uint8 else x


def fit_to_input(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, input_shape):
    """Normalised images fitted to a network's input: its channels and size, or a vector.
    ValueError when the images cannot become that input."""
    x = (x - mean) / std
    if len(input_shape) == 1:
        if x[0].numel() != input_shape[0]:
            raise ValueError(f"the network takes a vector of {input_shape[0]} features but the "
                             f"images have {x[0].numel()} values "
                             f"({'x'.join(map(str, x.shape[1:]))})")
        return x.flatten(1)
    channels, height, width = input_shape
    if x.shape[1] != channels:
        if x.shape[1] == 1:
            x = x.expand(-1, channels, -1, -1)
        elif channels == 1:
            x = x.mean(dim=1, keepdim=True)
        else:
            raise ValueError(f"the data has {x.shape[1]} channels and the network wants "
                             f"{channels}")
    if x.shape[2:] != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    return x
