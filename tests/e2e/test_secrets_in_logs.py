"""No secret reaches any log line: a whole run of the CLI (emulators, gateway with its
worker, a separate worker, submit, wait, status) at DEBUG, against PostgreSQL with a
password, with provider keys and a proxy password in a base URL."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from pathlib import Path

import httpx
import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.emulated import chat_lines
from tests.support.processes import free_port, healthy, run, start, wait_for
from unibatch.emulators.server import mounts
from unibatch.store.db import async_url

MODELS = (
    "openai/gpt-4o-mini",
    "anthropic/claude-haiku-4-5",
    "gemini/gemini-2.5-flash",
    "xai/grok-4",
    "groq/llama-3.1-8b-instant",
    "mistral/mistral-small-latest",
    "together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
)


def _login_role(admin_url: str, role: str, password: str) -> None:
    """A role that logs in with `password` and may use the test database's schema (under
    trust authentication any password is accepted; under password authentication it is
    checked)."""

    async def create() -> None:
        engine = create_async_engine(async_url(admin_url))
        try:
            async with engine.begin() as conn:
                exists = await conn.exec_driver_sql(
                    "SELECT 1 FROM pg_roles WHERE rolname = $1", (role,)
                )
                verb = "ALTER" if exists.first() else "CREATE"
                await conn.exec_driver_sql(f"{verb} ROLE {role} LOGIN PASSWORD '{password}'")
                await conn.exec_driver_sql(f"GRANT ALL ON SCHEMA public TO {role}")
        finally:
            await engine.dispose()

    asyncio.run(create())


def _base_urls(log: Path) -> dict[str, str]:
    # Each provider's base-URL line, named as its SDK names the variable (Azure's
    # AZURE_OPENAI_ENDPOINT, Bedrock's AWS_ENDPOINT_URL_BEDROCK, ...).
    names = {mount.base_url_env for mount in mounts()}
    lines = [line.partition("=") for line in log.read_text().splitlines()]
    return {name: value for name, _, value in lines if name in names}


def test_no_secret_is_logged_by_any_process(postgres_url: str, tmp_path: Path) -> None:
    token = secrets.token_hex(6)
    password = f"pgpw{token}"
    role = f"unibatch_logs_{make_url(postgres_url).database}"
    _login_role(postgres_url, role, password)
    database = make_url(postgres_url).set(username=role, password=password)
    keys = {
        "OPENAI_API_KEY": f"sk-openai-{token}",
        "ANTHROPIC_API_KEY": f"sk-ant-{token}",
        "GEMINI_API_KEY": f"AIza-gemini-{token}",
        "XAI_API_KEY": f"xai-{token}",
        "GROQ_API_KEY": f"gsk_{token}",
        "MISTRAL_API_KEY": f"mistral-{token}",
        "TOGETHER_API_KEY": f"together-{token}",
    }
    proxy_password = f"proxypw{token}"
    master = f"master-{token}"
    logs: list[Path] = []

    def log(name: str) -> Path:
        logs.append(tmp_path / f"{name}.log")
        return logs[-1]

    emulate_log = log("emulate")
    base = {"UNIBATCH_LOG_LEVEL": "DEBUG"}
    emulator = start(["emulate", "--port", "0", "--time-scale", "0.05"], base, log=emulate_log)
    processes: list[subprocess.Popen[bytes]] = [emulator]
    try:
        expected = len(mounts())
        wait_for(lambda: len(_base_urls(emulate_log)) == expected, 30, "the emulators to listen")
        urls = _base_urls(emulate_log)
        # A proxy password in a base URL: Anthropic's key travels in x-api-key, so the
        # Basic credentials httpx derives from it do not get in the way.
        urls["ANTHROPIC_BASE_URL"] = urls["ANTHROPIC_BASE_URL"].replace(
            "http://", f"http://proxy:{proxy_password}@"
        )
        env = {
            **base,
            **keys,
            **urls,
            "UNIBATCH_DATABASE_URL": database.render_as_string(hide_password=False),
            "UNIBATCH_MASTER_KEY": master,
            "UNIBATCH_FILES_DIR": str(tmp_path / "files"),
            "UNIBATCH_POLL_SCHEDULE": "0.1",
            "UNIBATCH_WORKER_IDLE": "0.05",
        }
        # Two rate-limited answers: errors are logged while they are retried.
        faults = httpx.post(
            f"{urls['OPENAI_BASE_URL']}/_emulator/faults", json={"count": 2, "status": 429}
        )
        assert faults.status_code == 200, faults.text

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        processes.append(start(["serve", "--port", str(port)], env, log=log("serve")))
        processes.append(start(["worker", "-v"], env, log=log("worker")))
        wait_for(lambda: healthy(url), 30, "the gateway to listen")

        created = httpx.post(
            f"{url}/v1/keys",
            json={"name": "team", "max_budget": 5},
            headers={"Authorization": f"Bearer {master}"},
        )
        virtual = created.json()["key"]
        requests = [
            {"custom_id": f"{model}-{i}", "body": {**line["body"], "model": model}}
            for model in MODELS
            for i, line in enumerate(chat_lines(2))
        ]
        batch = httpx.post(
            f"{url}/v1/batches",
            json={"requests": requests},
            headers={"Authorization": f"Bearer {virtual}"},
        ).json()

        def finished() -> bool:
            got = httpx.get(
                f"{url}/v1/batches/{batch['id']}", headers={"Authorization": f"Bearer {virtual}"}
            )
            return bool(got.json()["status"] == "completed")

        wait_for(finished, 60, "the gateway's batch to complete", step=0.1)

        path = tmp_path / "in.jsonl"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in requests))
        outputs = [run(["submit", str(path)], env)]
        batch_id = outputs[0].stdout.strip()
        outputs.append(run(["wait", batch_id, "--json"], env))
        outputs.append(run(["status", batch_id], env))
        outputs.append(run(["keys", "list"], env))
        assert [o.returncode for o in outputs] == [0, 0, 0, 0], [o.stderr for o in outputs]
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=20)

    written = {p.name: p.read_text() for p in logs}
    for output in outputs:
        written[" ".join(output.args[3:5])] = output.stdout + output.stderr
    # The run logged at DEBUG, with httpx's request lines among them: a secret would show.
    assert "DEBUG" in written["serve.log"] and "DEBUG" in written["worker.log"]
    assert "HTTP Request: POST" in written["serve.log"] + written["worker.log"]
    assert "DEBUG" in written[f"wait {batch_id}"]
    for secret in (password, proxy_password, master, virtual, *keys.values()):
        for name, text in written.items():
            assert secret not in text, f"{secret!r} is in the output of {name}"
