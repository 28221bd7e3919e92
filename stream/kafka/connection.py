"""How every Kafka client of the project connects: the broker addresses and the security settings, in one place.

:class:`KafkaConnection` is built once from the settings (:meth:`KafkaConnection.of`, which reads the password file)
and handed to whatever opens a client: :func:`client_options` gives an aiokafka producer, consumer or admin client
its keyword arguments, :meth:`KafkaConnection.faust_credentials` the Faust app its ``broker_credentials``. Functions
that take a broker accept either this or a plain ``kafka://`` URL (tests, benchmarks: no security). The password
never appears in ``repr``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.helpers import create_ssl_context

from emostream.settings import Settings


def bootstrap_servers(broker_url: str) -> str:
    """``kafka://h1:9092;kafka://h2:9092`` (Faust's form) -> ``h1:9092,h2:9092`` (a Kafka client's)."""
    hosts = []
    for part in broker_url.replace(",", ";").split(";"):
        part = part.strip()
        if part:
            hosts.append(part.split("://", 1)[-1].rstrip("/"))
    if not hosts:
        raise ValueError("no broker address in EMOSTREAM_BROKER_URL")
    return ",".join(hosts)


@dataclass(frozen=True)
class KafkaConnection:
    """Broker URL and security settings (see ``EMOSTREAM_KAFKA_*``)."""

    url: str
    protocol: str = "PLAINTEXT"
    cafile: str = ""
    certfile: str = ""
    keyfile: str = ""
    mechanism: str = "PLAIN"
    username: str = ""
    password: str = field(default="", repr=False)

    @classmethod
    def of(cls, settings: Settings) -> KafkaConnection:
        """The connection the settings describe (the password read from its file when one is named)."""
        password = settings.kafka_sasl_password
        if settings.kafka_sasl_password_file:
            password = Path(settings.kafka_sasl_password_file).read_text(encoding="utf-8").strip()
        return cls(
            settings.broker_url,
            settings.kafka_security_protocol,
            settings.kafka_ssl_cafile,
            settings.kafka_ssl_certfile,
            settings.kafka_ssl_keyfile,
            settings.kafka_sasl_mechanism,
            settings.kafka_sasl_username,
            password,
        )

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS context that verifies the brokers (against ``cafile``, else the system's CAs) and presents the client
        certificate when there is one; None without TLS."""
        if not self.uses_tls:
            return None
        return create_ssl_context(
            cafile=self.cafile or None, certfile=self.certfile or None, keyfile=self.keyfile or None
        )

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for an aiokafka producer, consumer or admin client."""
        options: dict[str, Any] = {"bootstrap_servers": bootstrap_servers(self.url), "security_protocol": self.protocol}
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            options.update(
                sasl_mechanism=self.mechanism, sasl_plain_username=self.username, sasl_plain_password=self.password
            )
        return options

    def faust_credentials(self) -> Any:
        """The Faust app's ``broker_credentials`` (None for plaintext)."""
        import faust

        if self.uses_sasl:
            return faust.SASLCredentials(
                username=self.username, password=self.password, ssl_context=self.ssl_context(), mechanism=self.mechanism
            )
        if self.uses_tls:
            return faust.SSLCredentials(self.ssl_context())
        return None


def client_options(broker: str | KafkaConnection) -> dict[str, Any]:
    """aiokafka keyword arguments for ``broker``: a connection, or a plain ``kafka://`` URL (no security)."""
    return (broker if isinstance(broker, KafkaConnection) else KafkaConnection(broker)).client_options()


def broker_url(broker: str | KafkaConnection) -> str:
    """The ``kafka://`` URL of ``broker``."""
    return broker.url if isinstance(broker, KafkaConnection) else broker
