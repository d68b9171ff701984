"""The text corpus and character tokenizer of the tiny language model (offline, deterministic).

Source: ``pydoc_data.topics.topics``, the help texts that ship with CPython (79 topics,
~465k characters in Python 3.11). Topics are concatenated in sorted key order, separated by a
blank line; the first 90 % of the characters are the train split, the last 10 % the val split.
The exact text depends on the Python patch release; metrics recorded in checkpoints refer to
the interpreter they were trained with.

Tokenizer: one token per character over ``"\\n"`` plus printable ASCII (codes 32..126),
:data:`VOCAB_SIZE` = 96. Typographic characters are mapped to ASCII first (curly quotes,
dashes, ellipsis); anything else becomes ``"?"``.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from accelsim.errors import ConfigError

__all__ = ["SPLITS", "VAL_FRACTION", "VOCAB", "VOCAB_SIZE", "corpus", "decode", "encode", "tokens"]

#: The token alphabet: index = token id.
VOCAB = "\n" + "".join(chr(c) for c in range(32, 127))
#: Number of distinct tokens.
VOCAB_SIZE = len(VOCAB)
#: Fraction of the corpus (at the end) held out for validation.
VAL_FRACTION = 0.1
#: Allowed split names.
SPLITS = ("train", "val")

_ASCII_MAP = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2026": "...",
    "\u2014": "--",
    "\u2013": "-",
    "\t": "    ",
}
_INDEX = {c: i for i, c in enumerate(VOCAB)}
_UNKNOWN = _INDEX["?"]


@lru_cache(maxsize=1)
def corpus() -> str:
    """The full corpus text (before tokenization)."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key].strip("\n") for key in sorted(topics)) + "\n"


def encode(text: str) -> torch.Tensor:
    """Token ids (int64, one per output character) of ``text``."""
    for src, dst in _ASCII_MAP.items():
        text = text.replace(src, dst)
    return torch.tensor([_INDEX.get(c, _UNKNOWN) for c in text], dtype=torch.int64)


def decode(ids: torch.Tensor | list[int]) -> str:
    """Text of token ids; raises ConfigError for ids outside ``[0, VOCAB_SIZE)``."""
    values = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
    for v in values:
        if not 0 <= int(v) < VOCAB_SIZE:
            raise ConfigError(f"token id: got {v!r}, expected an integer in [0, {VOCAB_SIZE})")
    return "".join(VOCAB[int(v)] for v in values)


@lru_cache(maxsize=1)
def _all_tokens() -> torch.Tensor:
    return encode(corpus())


def tokens(split: str = "train") -> torch.Tensor:
    """Token ids (int64, 1-D) of the ``"train"`` or ``"val"`` split (a fresh tensor)."""
    if split not in SPLITS:
        raise ConfigError(f"split: got {split!r}, expected one of {', '.join(SPLITS)}")
    ids = _all_tokens()
    cut = round(len(ids) * (1.0 - VAL_FRACTION))
    return (ids[:cut] if split == "train" else ids[cut:]).clone()
