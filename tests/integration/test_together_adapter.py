"""What the Together adapter does on its own: find a lost job (which carries no metadata)
by the name of its input file, against the Together emulator."""

from __future__ import annotations

import time

from tests.support.emulated import chat_lines, emulator_state, provider_env
from unibatch.emulators import RunningEmulator
from unibatch.providers.base import JobSpec, RequestLine
from unibatch.providers.together import SPEC
from unibatch.providers.together.adapter import TogetherProvider
from unibatch.providers.translate import CHAT

MODEL = "together/meta-llama/Llama-3.3-70B-Instruct-Turbo"


async def test_find_matches_the_input_file_named_after_the_tag(
    emulator: RunningEmulator,
) -> None:
    provider = TogetherProvider.from_env(SPEC, provider_env(emulator))

    async def submit(tag: str) -> str:
        async def lines():  # type: ignore[no-untyped-def]
            for i, line in enumerate(chat_lines(2, MODEL)):
                yield RequestLine(line["custom_id"], line["body"], i)

        spec = JobSpec(f"job-{tag}", MODEL.partition("/")[2], CHAT, tag, 2, 100)
        return (await provider.submit(spec, lines())).id

    try:
        since = time.time() - 1
        wanted = await submit("t-first")
        await submit("t-second")
        found = await provider.find("t-first", since=since)
        assert found is not None and found.id == wanted and found.tag == "t-first"
        assert await provider.find("t-none", since=since) is None
        assert await provider.find("t-first", since=time.time() + 60) is None
        calls = emulator_state(emulator, "together")["requests_seen"]
        # Newest first: the second job's file is read before the first's.
        assert calls["GET /v1/files/{file_id}"] == 2 + 2
    finally:
        await provider.aclose()
