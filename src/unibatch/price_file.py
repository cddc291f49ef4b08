"""Per-model prices from a TOML file (`UNIBATCH_PRICES=prices.toml`).

One table per model, named `provider/model`; amounts in USD per million tokens at list
prices, as providers publish them:

    ["openai/gpt-4o-mini"]
    input = 0.15
    output = 0.60
    cached_input = 0.075      # optional: reading the prompt cache
    batch_discount = 0.4      # optional: share of the list price a batch costs

    ["local/llama-3.1-8b"]
    input = 0.0
    output = 0.0

    ["gemini/gemini-2.5-pro"]
    input = 1.25
    output = 10.0
    tiers = [{ above = 200000, input = 2.5, output = 15.0 }]

Optional too: `cache_write`, `cache_write_1h` (prompt-cache writes). A model listed here
takes its price from here alone.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from unibatch.errors import ConfigurationError
from unibatch.pricing import Price

_AMOUNTS = ("input", "output", "cached_input", "cache_write", "cache_write_1h")
_KEYS = {*_AMOUNTS, "batch_discount", "tiers"}


def _price(where: str, entry: Any, source: str, *, tier: bool = False) -> Price:
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{where}: expected a table of prices")
    allowed = _KEYS - {"tiers", "batch_discount"} | {"above"} if tier else _KEYS
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ConfigurationError(f"{where}: unknown field {unknown[0]!r}")
    for name in ("input", "output"):
        if name not in entry:
            raise ConfigurationError(f"{where}: missing {name!r} (USD per million tokens)")
    values: dict[str, float] = {}
    for name in (*_AMOUNTS, "batch_discount"):
        value = entry.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigurationError(f"{where}.{name}: expected a number >= 0, not {value!r}")
        values[name] = float(value)
    tiers = []
    for i, raw in enumerate(entry.get("tiers") or ()):
        at = f"{where}.tiers[{i}]"
        above = raw.get("above") if isinstance(raw, dict) else None
        if isinstance(above, bool) or not isinstance(above, int) or above < 0:
            raise ConfigurationError(f"{at}.above: expected a token count, not {above!r}")
        tiers.append((above, _price(at, raw, source, tier=True)))
    return Price(**values, tiers=tuple(sorted(tiers, key=lambda t: t[0])), source=source)


def load_prices(path: Path | str) -> dict[str, Price]:
    """The prices of `path`, by "provider/model"; `ConfigurationError` naming the file
    and the entry when it cannot be used."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"UNIBATCH_PRICES: cannot read {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: not valid TOML ({exc})") from exc
    prices = {}
    for model, entry in data.items():
        if "/" not in model:
            raise ConfigurationError(f'{path}: ["{model}"]: name it provider/model')
        prices[model] = _price(f'{path}: ["{model}"]', entry, str(path))
    return prices
