"""moto's server on a free loopback port: real STS and Secrets Manager answers for success paths.

moto accepts any web identity token (oidc-anchors.md §9.5), so it proves the happy paths and
the keys' usability (``GetCallerIdentity``, ``AssumeRole``, ``GetSecretValue``); the negative
paths use :mod:`tests.fakes.sts`. moto[server] is a dev dependency: nothing is skipped.

Load the session fixture with ``pytest_plugins = ("tests.fakes.moto",)`` so every module
shares one server (and import this module only under ``TYPE_CHECKING`` there, so pytest
imports it first, as a plugin).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

DEFAULT_ACCOUNT = "123456789012"
"""The account moto puts resources in when called with non-moto keys."""
_START_TIMEOUT = 30.0


class MotoServer:
    """``moto_server -H 127.0.0.1 -p PORT`` as a child process."""

    def __init__(self) -> None:
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        for _ in range(3):  # the free port may be taken between probing and binding
            self.port = _free_port()
            self._process = subprocess.Popen(
                [*_command(), "-H", "127.0.0.1", "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NO_PROXY": "*"},
            )
            if self._wait_until_ready():
                return self
            self.stop()
        self._log.seek(0)
        raise RuntimeError(
            f"moto_server did not start:\n{self._log.read().decode(errors='replace')}"
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        self._log.close()

    def client(self, service: str, *, region: str = "us-east-1", **credentials: str) -> Any:
        """A botocore client for this server (test keys unless others are given)."""
        import botocore.session
        from botocore.config import Config

        session = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
        keys = credentials or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        return session.create_client(
            service,
            region_name=region,
            endpoint_url=self.url,
            config=Config(retries={"total_max_attempts": 1}),
            **keys,
        )

    def caller_identity(
        self, access_key_id: str, secret_access_key: str, session_token: str
    ) -> Any:
        """``GetCallerIdentity`` signed with these keys: proof that they work."""
        client = self.client(
            "sts",
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            aws_session_token=session_token,
        )
        return client.get_caller_identity()

    def _wait_until_ready(self) -> bool:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                with opener.open(f"{self.url}/moto-api/", timeout=1) as response:
                    if response.status == 200:
                        return True
            time.sleep(0.05)
        return False


def _command() -> list[str]:
    script = Path(sys.executable).with_name("moto_server")
    return [str(script)] if script.exists() else [sys.executable, "-m", "moto.server"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server for the whole test session."""
    with MotoServer() as server:
        yield server
