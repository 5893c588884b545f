"""Starts a real ``rustydb serve`` (the debug binary, or $RUSTYDB_BIN) on a free port with a temp
data directory and a known admin password."""

from __future__ import annotations

import re
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ADMIN_PASSWORD = "admin-password-for-sdk-tests"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(tmp_path_factory.mktemp("rustydb-data"), None)


@pytest.fixture(scope="session")
def short_token_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server whose access tokens live 8 s (expiry closes GraphQL connections with 4403)."""
    yield from _serve(tmp_path_factory.mktemp("rustydb-short"), "[security]\naccess_token_ttl_secs = 8\ntoken_leeway_secs = 0\n")


def _serve(data_dir: Path, config: str | None) -> Iterator[str]:
    binary = os.environ.get("RUSTYDB_BIN", str(ROOT / "target" / "debug" / "rustydb"))
    args = [binary, "serve", "--bind", "127.0.0.1:0", "--data-dir", str(data_dir), "--log-format", "json"]
    if config is not None:
        (data_dir / "rustydb.toml").write_text(config)
        args += ["--config", str(data_dir / "rustydb.toml")]
    process = subprocess.Popen(
        args,
        env={**os.environ, "RUSTYDB_ADMIN_PASSWORD": ADMIN_PASSWORD},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    address: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if not address and "rustydb listening" in line:
                match = re.search(r'"address":"([^"]+)"', line)
                if match:
                    address.append(match.group(1))
                    found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(60):
        process.kill()
        raise RuntimeError("server did not report its address within 60 s")
    yield address[0]
    process.terminate()
    process.wait(30)
