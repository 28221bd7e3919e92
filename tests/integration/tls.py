"""A Kafka that only speaks TLS, for the tests: Tansu behind a real TLS terminator (Debian's stunnel), with a throwaway
CA, a server certificate for 127.0.0.1 and a client certificate (mutual TLS), all made with the openssl command.

Tansu's own ``--cert`` listener was seen serving plaintext, so the terminator does the TLS: clients connect to its
port, and Tansu advertises that port, so every later connection (metadata, group coordinator) goes through it too.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from stream.broker import EmbeddedBroker, free_port


@dataclass(frozen=True)
class Certificates:
    """PEM files of a test CA, and of a server certificate (127.0.0.1, localhost) and a client certificate it signed."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def server(self) -> tuple[Path, Path]:
        return self.folder / "server.pem", self.folder / "server.key"

    @property
    def client(self) -> tuple[Path, Path]:
        return self.folder / "client.pem", self.folder / "client.key"

    @classmethod
    def make(cls, folder: Path) -> Certificates:
        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

        folder.mkdir(parents=True, exist_ok=True)
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=emostream test CA",
                "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
        (folder / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        for name, extra in (("server", ["-extfile", "server.ext"]), ("client", [])):
            openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=emostream test {name}",
                    "-keyout", f"{name}.key", "-out", f"{name}.csr")  # fmt: skip
            openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                    "-days", "2", "-out", f"{name}.pem", *extra)  # fmt: skip
        return cls(folder)


class TlsBroker:
    """Tansu on a loopback port only stunnel talks to, stunnel on the port clients use (mutual TLS: a client must
    present a certificate signed by the test CA). Start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(self, folder: Path) -> None:
        if shutil.which("stunnel") is None:
            raise RuntimeError("the TLS tests need Debian's stunnel4 (`make test` installs it: make system-deps)")
        self.folder = folder
        self.certificates = Certificates.make(folder / "certs")
        self.port = free_port()
        self.broker = EmbeddedBroker(advertised_port=self.port)
        self.tunnel: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    def client_env(self, *, ca: bool = True, client_certificate: bool = True) -> dict[str, str]:
        """The ``EMOSTREAM_KAFKA_*`` settings of a client (leave out the CA or the client certificate to be refused)."""
        variables = {"EMOSTREAM_BROKER_URL": self.url, "EMOSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL"}
        if ca:
            variables["EMOSTREAM_KAFKA_SSL_CAFILE"] = str(self.certificates.ca)
        if client_certificate:
            certificate, key = self.certificates.client
            variables["EMOSTREAM_KAFKA_SSL_CERTFILE"] = str(certificate)
            variables["EMOSTREAM_KAFKA_SSL_KEYFILE"] = str(key)
        return variables

    def start(self) -> TlsBroker:
        self.broker.start()
        certificate, key = self.certificates.server
        config = self.folder / "stunnel.conf"
        config.write_text(
            "foreground = yes\n"
            "pid =\n"
            f"output = {self.folder / 'stunnel.log'}\n"
            "[kafka]\n"
            f"accept = 127.0.0.1:{self.port}\n"
            f"connect = 127.0.0.1:{self.broker.port}\n"
            f"cert = {certificate}\n"
            f"key = {key}\n"
            f"CAfile = {self.certificates.ca}\n"
            "verifyChain = yes\n"  # mutual TLS: a client certificate signed by the CA is required
        )
        self.tunnel = subprocess.Popen(
            ["stunnel", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.tunnel.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"stunnel did not start: {self.log()}") from None
                time.sleep(0.1)

    def log(self) -> str:
        path = self.folder / "stunnel.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.tunnel is not None and self.tunnel.poll() is None:
            self.tunnel.terminate()
            self.tunnel.wait(timeout=10)
        self.broker.stop()
