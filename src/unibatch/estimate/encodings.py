"""OpenAI's tokenizers (tiktoken encodings) without a download.

`tiktoken` fetches an encoding's rank file from OpenAI's servers at first use, which
cannot work offline. The `bpe-openai` package ships the same files (`cl100k_base`,
`o200k_base`); they are checked here against the SHA-256 that tiktoken itself expects of
the files it would download, so a count is OpenAI's count or an error, never a guess.
tiktoken does the encoding.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
from functools import cache
from pathlib import Path

import tiktoken

from unibatch.errors import ConfigurationError

ENDOFTEXT = "<|endoftext|>"
ENDOFPROMPT = "<|endofprompt|>"

# Name -> (the file's SHA-256, split pattern, special tokens), as tiktoken's own
# `tiktoken_ext/openai_public.py` defines them.
_ENCODINGS: dict[str, tuple[str, str, dict[str, int]]] = {
    "cl100k_base": (
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
        {
            ENDOFTEXT: 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            ENDOFPROMPT: 100276,
        },
    ),
    "o200k_base": (
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        {ENDOFTEXT: 199999, ENDOFPROMPT: 200018},
    ),
}
DEFAULT = "o200k_base"


def encoding_name(model: str) -> str:
    """The encoding OpenAI uses for `model` (tiktoken's table); o200k_base, that of
    every model since gpt-4o, for a model the table does not know."""
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        return DEFAULT
    return name if name in _ENCODINGS else DEFAULT


@cache
def get_encoding(name: str) -> tiktoken.Encoding:
    """The encoding `name` (cl100k_base or o200k_base), loaded once per process."""
    expected, pattern, special = _ENCODINGS[name]
    # Found, not imported: importing bpe_openai loads its own tokenizers, which we do
    # not use.
    found = importlib.util.find_spec("bpe_openai")
    folders = (found.submodule_search_locations or []) if found else []
    try:
        if not folders:
            raise FileNotFoundError("package not installed")
        raw = gzip.decompress((Path(folders[0]) / "data" / f"{name}.tiktoken.gz").read_bytes())
    except OSError as exc:
        raise ConfigurationError(
            f"the {name} token file is missing ({exc}): reinstall the bpe-openai package"
        ) from exc
    if hashlib.sha256(raw).hexdigest() != expected:
        raise ConfigurationError(
            f"the {name} token file of the bpe-openai package is not OpenAI's "
            "(its SHA-256 differs): reinstall the package"
        )
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in raw.splitlines() if line)
    }
    return tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=special)
