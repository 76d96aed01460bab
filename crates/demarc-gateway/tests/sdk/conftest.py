"""Starts `demarc fake-upstream` and `demarc gateway` (the binary named by DEMARC_BIN) on free
loopback ports, with a config, a policy and a SQLite store in a temporary folder, and gives the
tests an OpenAI SDK client with a gateway key and the fake's control routes."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest

from sdkutil import CANARY, Fake

APP = "sdk-app"

# The policy issue 14's cases are written against: secrets and the canary blocked on output,
# personal data redacted on input (and restored in the answer), prompt injection and smuggled
# invisible text blocked on input.
POLICY = f"""\
    policy:
      name: sdk
      input: {{pii: redact, secrets: redact, injection: block, invisible: block}}
      output: {{secrets: block, pii: flag, canary: block}}
      canary: {{tokens: [{CANARY}]}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """Status and body of a GET; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0, ""


def binary() -> str:
    path = os.environ.get("DEMARC_BIN")
    if not path or not os.access(path, os.X_OK):
        pytest.exit("DEMARC_BIN must name the built `demarc` binary (see run.sh)", returncode=2)
    return path


def stop(proc: subprocess.Popen, wait: float = 35.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Gateway:
    """One `demarc gateway` process."""

    def __init__(self, bin_: str, folder: Path, fake_url: str, db_url: str, name: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = folder / f"{name}.yaml"
        self.config.write_text(
            f"""\
listen: 127.0.0.1:{self.port}
db: {db_url}
upstreams:
  - id: fake
    kind: openai
    base_url: {fake_url}
    timeouts: {{connect_ms: 2000, first_byte_ms: 20000, total_ms: 60000}}
    retries: {{max: 0}}
applications:
  - id: {APP}
    upstreams: [fake]
{POLICY}"""
        )
        self.log_path = folder / f"{name}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [bin_, "gateway", "--config", str(self.config), "--workers", "2"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited at start-up:\n{self.log_path.read_text()}")
            if http_get(self.url + "/healthz")[0] == 200:
                return
            time.sleep(0.1)
        stop(self.proc, 5)
        raise RuntimeError(f"gateway did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        stop(self.proc)
        self.log.close()


class Stack:
    def __init__(self, folder: Path):
        self.bin = binary()
        self.folder = folder
        self.db_path = folder / "demarc.db"
        self.db_url = f"sqlite://{self.db_path}"
        self.fake_log = open(folder / "fake.log", "wb")
        self.fake_proc = subprocess.Popen(
            [self.bin, "fake-upstream", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=self.fake_log,
        )
        ready, _, _ = select.select([self.fake_proc.stdout], [], [], 30)
        line = self.fake_proc.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http://"):
            stop(self.fake_proc, 5)
            raise RuntimeError(f"fake upstream did not start: {line!r}")
        self.fake_url = line  # http://127.0.0.1:PORT/v1
        self.fake = Fake(line.removesuffix("/v1"))
        self.gateways: list[Gateway] = []
        self.gateway = self.start_gateway("gateway")
        created = subprocess.run(
            [self.bin, "keys", "create", APP, "--config", str(self.gateway.config),
             "--db", self.db_url],
            capture_output=True, text=True, timeout=60,
        )
        if created.returncode != 0:
            raise RuntimeError(f"keys create failed: {created.stderr}")
        self.key = created.stdout.strip().splitlines()[-1]

    def start_gateway(self, name: str) -> Gateway:
        gw = Gateway(self.bin, self.folder, self.fake_url, self.db_url, name)
        self.gateways.append(gw)
        return gw

    def client(self, gateway: Gateway | None = None, **kwargs) -> openai.OpenAI:
        gw = gateway or self.gateway
        return openai.OpenAI(base_url=gw.url + "/v1", api_key=self.key, max_retries=0,
                             timeout=kwargs.pop("timeout", 30), **kwargs)

    def audit_events(self, since_ms: int = 0) -> list[dict]:
        """The audit events written to the store at or after `since_ms`, oldest first."""
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            rows = db.execute(
                "SELECT payload FROM audit_events WHERE at_ms >= ? ORDER BY at_ms, seq",
                (since_ms,),
            ).fetchall()
        finally:
            db.close()
        return [json.loads(p) for (p,) in rows]

    def close(self) -> None:
        for gw in self.gateways:
            gw.stop()
        stop(self.fake_proc, 5)
        self.fake_log.close()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("demarc-sdk"))
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def fake(stack) -> Fake:
    """The fake upstream, with nothing scripted or recorded."""
    stack.fake.reset()
    return stack.fake


@pytest.fixture
def client(stack, fake) -> openai.OpenAI:
    return stack.client()
