"""What counts as the same request for the result cache."""

from __future__ import annotations

import pytest

from unibatch.engine.cache import CachePolicy, cache_key, cache_policy
from unibatch.errors import InputError

CHAT = "/v1/chat/completions"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


def _key(body: object, namespace: str = "", model: str = "m", endpoint: str = CHAT) -> bytes:
    return cache_key(namespace, "openai", model, endpoint, body)


def test_key_order_at_any_level_does_not_matter() -> None:
    reordered = {
        "temperature": 0,
        "messages": [{"content": "hi", "role": "user"}],
        "model": "m",
    }
    assert _key(reordered) == _key(BODY)
    assert len(_key(BODY)) == 32


@pytest.mark.parametrize(
    "other",
    [
        {**BODY, "temperature": 0.0},  # 0 and 0.0 are different JSON values
        {**BODY, "max_tokens": 5},
        {**BODY, "messages": [{"role": "user", "content": "hi "}]},
        # List order is part of the request.
        {**BODY, "messages": [*BODY["messages"], {"role": "user", "content": "x"}]},
    ],
)
def test_any_value_changed_is_another_request(other: dict[str, object]) -> None:
    assert _key(other) != _key(BODY)


def test_namespace_model_and_endpoint_are_part_of_the_key() -> None:
    assert _key(BODY, namespace="key:a") != _key(BODY)
    assert _key(BODY, model="m2") != _key(BODY)
    assert _key(BODY, endpoint="/v1/responses") != _key(BODY)
    # Separators keep the parts apart.
    assert cache_key("a", "b", "m", CHAT, BODY) != cache_key("", "ab", "m", CHAT, BODY)


def test_policy_from_front_end_options() -> None:
    assert cache_policy(False) is None
    assert cache_policy(True) == CachePolicy(None)
    assert cache_policy(True, "1h30m") == CachePolicy(5400.0)
    assert cache_policy(True, 60) == CachePolicy(60)
    with pytest.raises(InputError, match="cache_ttl"):
        cache_policy(False, "1d")
    with pytest.raises(InputError, match="cache_ttl"):
        cache_policy(True, "soon")
    with pytest.raises(InputError, match="cache_ttl"):
        CachePolicy(-1)
    assert CachePolicy(60).since(100.0) == 40.0
    assert CachePolicy().since(100.0) is None
