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
    assert key not in listed.stdout and key.split("_")[2] not in listed.stdout
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


def test_serve_needs_both_tls_files(run_quasar, tmp_path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    answer = run_quasar("serve", "--tls-cert", str(cert))
    assert answer.returncode == 1
    assert answer.stderr.strip() == "quasar: error: give both --tls-cert and --tls-key, or neither"


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
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
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
