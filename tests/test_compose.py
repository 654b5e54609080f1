"""compose.yaml and the Dockerfile, checked with `docker-compose config` (no engine needed)."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = shutil.which("docker-compose")

needs_compose = pytest.mark.skipif(
    COMPOSE is None, reason="docker-compose is not installed (Debian package docker-compose)"
)


def _scalar(text: str) -> Any:
    text = text.strip()
    if text in ("{}", ""):
        return {} if text else None
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def parse_block_yaml(text: str) -> Any:
    """The block-style YAML `docker-compose config` prints: mappings, lists, scalars."""
    lines = [
        (len(raw) - len(raw.lstrip(" ")), raw.strip())
        for raw in text.splitlines()
        if raw.strip() and not raw.lstrip().startswith("#")
    ]

    def block(i: int, indent: int) -> tuple[Any, int]:
        if lines[i][1].startswith("- "):
            items: list[Any] = []
            while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                body = lines[i][1][2:]
                if ": " in body and not body.startswith(("'", '"')):
                    key, _, value = body.partition(": ")
                    items.append({key.strip(): _scalar(value)})
                else:
                    items.append(_scalar(body))
                i += 1
            return items, i
        mapping: dict[str, Any] = {}
        while i < len(lines) and lines[i][0] == indent:
            line = lines[i][1]
            key, _, value = line[:-1].partition(":") if line.endswith(":") else line.partition(": ")
            i += 1
            if value.strip():
                mapping[key] = _scalar(value)
            elif i < len(lines) and (lines[i][0] > indent or lines[i][1].startswith("- ")):
                mapping[key], i = block(i, lines[i][0])
            else:
                mapping[key] = None
        return mapping, i

    return block(0, 0)[0]


def compose_config(tmp_path: Path, **env: str) -> dict[str, Any]:
    """The resolved configuration, as a user's `docker-compose config` prints it."""
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("QUASAR_")}
    run_env.update(env)
    result = subprocess.run(
        [COMPOSE, "--project-directory", str(ROOT), "-f", str(ROOT / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=run_env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    return parse_block_yaml(result.stdout)


@needs_compose
def test_compose_defines_database_and_daemon_with_health_gated_start(tmp_path: Path) -> None:
    config = compose_config(tmp_path)
    db, quasar = config["services"]["db"], config["services"]["quasar"]

    assert db["image"] == "timescale/timescaledb:latest-pg17"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert {"pgdata"} <= set(config["volumes"])
    assert "pgdata:/var/lib/postgresql/data:rw" in db["volumes"]
    assert db["restart"] == quasar["restart"] == "unless-stopped"

    assert quasar["build"]["context"] == str(ROOT)
    assert quasar["depends_on"]["db"]["condition"] == "service_healthy"
    assert quasar["command"] == ["--log-format", "json"]


@needs_compose
def test_daemon_dsn_reaches_the_database_service_without_a_password_in_env(
    tmp_path: Path,
) -> None:
    config = compose_config(tmp_path)
    db, quasar = config["services"]["db"], config["services"]["quasar"]
    env = quasar["environment"]
    dsn = urlsplit(env["QUASAR_DSN"])

    assert dsn.hostname == "db" and (dsn.port or 5432) == 5432
    assert dsn.username == db["environment"]["POSTGRES_USER"]
    assert dsn.path.lstrip("/") == db["environment"]["POSTGRES_DB"]
    assert dsn.password is None
    assert not any("PASSWORD=" in f"{k}={v}" and not k.endswith("_FILE") for k, v in env.items())


@needs_compose
def test_secret_files_are_mounted_where_the_environment_points(tmp_path: Path) -> None:
    config = compose_config(tmp_path)
    secrets = config["secrets"]
    for service in config["services"].values():
        mounted = {item["source"] for item in service.get("secrets", [])}
        for key, value in service.get("environment", {}).items():
            if str(value).startswith("/run/secrets/"):
                name = value.removeprefix("/run/secrets/")
                assert name in mounted, f"{key} points at {value}, which is not mounted"
                assert secrets[name]["file"].startswith(str(ROOT / "secrets")), key
    quasar_env = config["services"]["quasar"]["environment"]
    assert quasar_env["QUASAR_SYSTEM_CONTEXT"] == "/run/secrets/master_key"
    assert secrets["master_key"]["file"] == str(ROOT / "secrets" / "master.key")


@needs_compose
def test_database_port_and_uid_follow_the_environment(tmp_path: Path) -> None:
    config = compose_config(tmp_path, QUASAR_DB_PORT="6543", QUASAR_UID="1234")
    assert config["services"]["db"]["ports"] == ["127.0.0.1:6543:5432/tcp"]
    assert config["services"]["quasar"]["build"]["args"]["QUASAR_UID"] == "1234"


def test_dockerfile_builds_from_files_the_build_context_keeps() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    instructions = [
        line.split(None, 1)
        for line in dockerfile.splitlines()
        if line.strip() and not line.startswith((" ", "#"))
    ]
    copied = [part for op, args in instructions if op == "COPY" for part in args.split()[:-1]]

    assert ["FROM", "python:3.11-slim"] in instructions
    assert ["ENTRYPOINT", '["quasar", "--daemon"]'] in instructions
    users = [args for op, args in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert copied
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: missing from the repository"
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), (
            f"COPY {source}: excluded by .dockerignore"
        )


@needs_compose
def test_api_service_publishes_its_port_on_loopback_by_default(tmp_path: Path) -> None:
    api = compose_config(tmp_path)["services"]["api"]
    assert api["entrypoint"] == ["quasar", "serve"]
    assert api["ports"] == ["127.0.0.1:8400:8400/tcp"]
    assert api["environment"]["QUASAR_SYSTEM_CONTEXT"] == "/run/secrets/master_key"
    moved = compose_config(tmp_path, QUASAR_API_PORT="9400")["services"]["api"]
    assert moved["ports"] == ["127.0.0.1:9400:8400/tcp"]
