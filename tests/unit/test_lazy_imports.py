"""Start-up stays short because commands load what they need when they run: `--help`
loads neither the store nor the engine, the gateway or the providers; `status` reads the
store without the engine's providers, pricing or HTTP clients. Checked in a fresh
interpreter by what is in `sys.modules`, not by timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from unibatch import Client
from unibatch.config import Settings
from unibatch.dburl import database_url
from unibatch.store.db import alembic_config, head_revision

# Modules a light command must not load (a prefix covers its submodules).
HEAVY = [
    "alembic",
    "fastapi",
    "genai_prices",
    "httpx",
    "pydantic_settings",
    "starlette",
    "uvicorn",
    "unibatch.client",
    "unibatch.engine.core",
    "unibatch.gateway",
    "unibatch.pricing",
    "unibatch.providers",
]


def _loaded_after(
    code: str, env: dict[str, str] | None = None, names: tuple[str, ...] = ("sqlalchemy",)
) -> list[str]:
    """Which of HEAVY (and `names`) a fresh interpreter holds after running `code`."""
    probe = (
        "import sys\n"
        f"{code}\n"
        "import json\n"
        f"names = {[*HEAVY, *names]!r}\n"
        "print(json.dumps(sorted({n for n in names for m in list(sys.modules)"
        " if m == n or m.startswith(n + '.')})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def _cli(*args: str) -> str:
    # What `python -m unibatch` does, with the exit typer raises caught.
    return (
        "from unibatch.cli import app\n"
        "try:\n"
        f"    app({list(args)!r}, prog_name='unibatch')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
    )


def test_import_unibatch_loads_nothing_heavy() -> None:
    assert _loaded_after("import unibatch") == []


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("results", "--help")])
def test_help_and_version_load_nothing_heavy(args: tuple[str, ...]) -> None:
    assert _loaded_after(_cli(*args)) == []


@pytest.mark.parametrize("command", ["status", "list", "results"])
def test_reading_commands_load_the_store_only(command: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    line = {"custom_id": "a", "body": {"model": "openai/gpt-4o-mini", "messages": []}}
    with Client(url, env={"OPENAI_API_KEY": "test"}) as client:
        batch = client.submit([line])
    args = {
        "status": ("status", batch.id, "--json"),
        "list": ("list", "--json"),
        "results": ("results", batch.id, "--partial", "-o", str(tmp_path / "out.jsonl")),
    }[command]
    env = {"UNIBATCH_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    # They read SQLite with the standard library (`store.lite`).
    assert _loaded_after(_cli(*args), env) == []


@pytest.mark.parametrize(
    "args",
    [
        ("status", "--json"),
        ("status",),
        ("results", "--partial", "-o", "out.jsonl"),
        ("list", "--json"),
        ("list", "--status", "pending", "--limit", "3"),
    ],
)
def test_reading_commands_on_sqlite_load_no_cli_framework(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    # What `python -m unibatch status ID` runs; printed to a pipe (no terminal).
    url = f"sqlite:///{tmp_path / 'u.db'}"
    line = {"custom_id": "a", "body": {"model": "openai/gpt-4o-mini", "messages": []}}
    with Client(url, env={"OPENAI_API_KEY": "test"}) as client:
        batch = client.submit([line])
    named = [] if args[0] == "list" else [batch.id]
    argv = [args[0], *named, "--database", url] + [
        str(tmp_path / a) if a.endswith(".jsonl") else a for a in args[1:]
    ]
    code = f"from unibatch.cli import main\nmain({argv!r})"
    names = ("sqlalchemy", "typer", "click", "rich", "pydantic")
    # Wide enough for the notice naming the long temporary path: rich would wrap it.
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "300"}
    # The list's table is laid out by rich (its JSON is not).
    table = args[0] == "list" and "--json" not in args
    assert _loaded_after(code, env, names) == (["rich"] if table else [])


def test_public_names_still_import() -> None:
    import unibatch

    for name in unibatch.__all__:
        assert getattr(unibatch, name) is not None
    from unibatch import AsyncClient, Result

    assert AsyncClient.__module__ == "unibatch.client"
    assert Result.__module__ == "unibatch.types"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = unibatch.Nope


def test_head_revision_is_alembics() -> None:
    # The store skips Alembic when the database is at this revision.
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


@pytest.mark.parametrize(
    "env",
    [
        {"UNIBATCH_DATABASE_URL": "sqlite:////tmp/a.db"},
        {"unibatch_database_url": "postgresql://u@h/db"},
        {"UNIBATCH_DATABASE_URL": ""},
    ],
)
def test_database_url_is_the_settings_one(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("UNIBATCH_DATABASE_URL", "unibatch_database_url"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert database_url() == Settings().database_url
    assert database_url("sqlite:///given.db") == "sqlite:///given.db"


def test_the_engine_loads_no_tokenizer_and_no_metrics_collector() -> None:
    # The tokenizer (~10 MB) is for estimates, spend caps and exact queue counts only; the
    # metrics collector reads the store at scrape time, in the gateway.
    code = "import unibatch.client, unibatch.engine.core, unibatch.providers.http"
    names = ("tiktoken", "unibatch.estimate", "unibatch.metrics.collector")
    loaded = _loaded_after(code, names=names)
    assert [n for n in loaded if n in names] == []


def test_the_decoder_helper_loads_no_store_and_no_cli_tools() -> None:
    # What the ingest decoder helper loads before its first job (`unibatch.decode.process`).
    from unibatch.decode.process import _START

    code = (
        _START.replace("main()", "")
        + "\nfrom unibatch.providers.registry import ProviderSet\n"
        + "ProviderSet({'OPENAI_API_KEY': 'k'}).get('openai')"
    )
    # `trio` itself is in sys.modules as None (blocked); its modules are not there.
    names = ("sqlalchemy", "tiktoken", "trio._core", "rich", "click", "pydantic_settings")
    loaded = _loaded_after(code, names=names)
    assert [n for n in loaded if n in names] == []
