"""`quasar apikey ...` and `quasar serve` as a user runs them: real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_apikey_create_prints_the_key_once_and_list_never_shows_it(run_quasar) -> None:
    created = run_quasar("apikey", "create", "notebook", "--scope", "read", "--rate", "20")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("qk_") and len(created.stdout.splitlines()) == 1
    assert "Shown once" in created.stderr and key not in created.stderr

    listed = run_quasar("apikey", "list", "--json")
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["scopes"], r["rate"], r["uses"]) for r in rows] == [
        ("notebook", ["read"], 20, 0)
    ]
    assert key not in listed.stdout and key.split("_", 2)[2] not in listed.stdout
    table = run_quasar("apikey", "list")
    assert "notebook" in table.stdout and "read" in table.stdout

    again = run_quasar("apikey", "create", "notebook")
    assert again.returncode == 1 and again.stderr.count("\n") == 1
    assert "exists" in again.stderr and "Traceback" not in again.stderr

    assert run_quasar("apikey", "revoke", "notebook").returncode == 0
    gone = run_quasar("apikey", "revoke", "notebook")
    assert gone.returncode == 1 and "no API key named 'notebook'" in gone.stderr


def test_apikey_usage_errors_exit_2_with_one_line(run_quasar) -> None:
    scope = run_quasar("apikey", "create", "x", "--scope", "write")
    assert scope.returncode == 2 and "unknown scope write" in scope.stderr
    expires = run_quasar("apikey", "create", "x", "--expires", "soon")
    assert expires.returncode == 2 and "'soon' is not a date" in expires.stderr
    past = run_quasar("apikey", "create", "x", "--expires", "2001-01-01")
    assert past.returncode == 1 and "in the past" in past.stderr


def _healthy(proc: subprocess.Popen[str], port: int) -> httpx.Response:
    """The first answer of /health, waiting while the server starts (as long as it lives)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        except httpx.TransportError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)


def test_serve_needs_both_tls_files(run_quasar, tmp_path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    answer = run_quasar("serve", "--tls-cert", str(cert))
    assert answer.returncode == 1
    assert answer.stderr.strip() == "quasar: error: give both --tls-cert and --tls-key, or neither"


def test_serve_refuses_a_cors_origin_that_is_not_one(run_quasar) -> None:
    answer = run_quasar("serve", "--cors-origin", "dash.example/app")
    assert answer.returncode == 2 and "Traceback" not in answer.stderr
    assert "'dash.example/app' is not a web origin" in answer.stderr.strip().splitlines()[-1]
    alone = run_quasar("--serve-cors-origin", "https://dash.example", "status")
    assert alone.returncode == 2
    assert "--serve-cors-origin goes with --daemon --serve" in alone.stderr


def test_serve_warns_on_an_open_address_answers_and_stops_on_sigterm(quasar_env) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "quasar_tui", "serve", "--host", "0.0.0.0", "--port", str(port)],
        env=quasar_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = _healthy(proc, port)
        assert health.json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/v1/symbols").status_code == 401
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    warnings = [line for line in err.splitlines() if "warning: listening on 0.0.0.0" in line]
    assert len(warnings) == 1 and "without TLS" in warnings[0]
    access = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [(a["route"], a["status"], a["key"]) for a in access] == [
        ("/health", 200, None),
        ("/v1/symbols", 401, None),
    ]


def test_the_daemon_serves_the_api_from_its_own_process(quasar_env, run_quasar) -> None:
    key = run_quasar("apikey", "create", "dashboard").stdout.strip()
    port = _free_port()
    command = [sys.executable, "-m", "quasar_tui", "--daemon", "--serve", f"127.0.0.1:{port}"]
    command += ["--serve-cors-origin", "https://dash.example"]
    proc = subprocess.Popen(command, env=quasar_env, stderr=subprocess.PIPE, text=True)
    try:
        _healthy(proc, port)
        ticket = httpx.post(
            f"http://127.0.0.1:{port}/v1/stream/tickets",
            headers={"X-API-Key": key, "Origin": "https://dash.example"},
        )
        assert ticket.status_code == 201
        assert ticket.headers["access-control-allow-origin"] == "https://dash.example"
        deadline = time.monotonic() + 60
        while True:  # the engine publishes its status a moment after the API is up
            status = httpx.get(f"http://127.0.0.1:{port}/v1/status", headers={"X-API-Key": key})
            assert status.status_code == 200, status.text
            if status.json()["engine"]["running"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status.json()["engine"]["owner"]["mode"] == "daemon"
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped cleanly" in err and "Traceback" not in err


def test_the_daemon_stops_in_one_line_when_the_apis_port_is_taken(quasar_env) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "quasar_tui", "--daemon", "--serve", str(port)],
            env=quasar_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and f"cannot listen on 127.0.0.1:{port}" in errors[0]
    assert "Traceback" not in done.stderr


def test_serve_without_daemon_is_a_usage_error(run_quasar) -> None:
    wrong = run_quasar("--serve", "8400", "status")
    assert wrong.returncode == 2 and "--serve goes with --daemon" in wrong.stderr
    bad = run_quasar("--daemon", "--serve", "http://x")
    assert bad.returncode == 2 and "is not [HOST:]PORT" in bad.stderr
