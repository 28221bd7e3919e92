"""Why the brokers refuse this client, in one sentence that names the setting to fix.

aiokafka reports a failed bootstrap as "Unable to bootstrap from [...]" (the cause is only in a log line), a SCRAM
rejection by a broker that answers with RFC 5802's ``e=`` as ``KeyError: 'v'``, and Faust retries a refused connection
forever. When a client fails to start, :func:`explain` opens one connection to the first broker itself (aiokafka's
``create_conn``: TLS and SASL exactly as the clients do them, then one metadata request) and turns what failed into a
:class:`BrokerRefused`: permanent for TLS and SASL mistakes (retrying cannot help), not for a broker that is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed, UnsupportedSaslMechanismError
from aiokafka.protocol.metadata import MetadataRequest

from stream.kafka.connection import KafkaConnection, bootstrap_servers

PROBE_TIMEOUT_S = 10.0


class BrokerRefused(RuntimeError):
    """The brokers cannot be used as configured; ``permanent`` when retrying cannot help (TLS or SASL settings)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def as_connection(broker: str | KafkaConnection) -> KafkaConnection:
    return broker if isinstance(broker, KafkaConnection) else KafkaConnection(broker)


async def start_client(client: Any, broker: str | KafkaConnection) -> None:
    """``await client.start()`` for an aiokafka producer, consumer or admin client; a refused connection raises
    :class:`BrokerRefused` with the cause instead of aiokafka's generic error (other errors, such as a topic that does
    not exist, stay what they are)."""
    try:
        await client.start()
    except (
        KafkaConnectionError,
        SaslAuthenticationFailed,
        UnsupportedSaslMechanismError,
        OSError,
        KeyError,
        ValueError,
    ) as exc:
        connection = as_connection(broker)
        if isinstance(exc, (KeyError, ValueError)) and not connection.uses_sasl:
            raise  # not a SCRAM exchange aiokafka could not read: a real bug, keep its traceback
        await _close_quietly(client)
        raise await explain(connection) from exc


async def check_brokers(broker: str | KafkaConnection, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Connect once as every client of the project would (within ``timeout`` s); raise :class:`BrokerRefused` saying
    why if that fails."""
    connection = as_connection(broker)
    host, port = _first_broker(connection)
    problem = await _probe(connection, host, port, timeout)
    if problem is not None:
        raise problem


async def explain(connection: KafkaConnection) -> BrokerRefused:
    """Why a client of ``connection`` could not start (probing the first broker again)."""
    host, port = _first_broker(connection)
    problem = await _probe(connection, host, port, PROBE_TIMEOUT_S)
    if problem is None:
        problem = BrokerRefused(
            f"{_where(connection)}: the first broker accepts this client, but no broker could be used for the "
            "cluster's metadata (are the brokers' advertised addresses reachable from here?)",
            permanent=False,
        )
    return problem


async def _probe(connection: KafkaConnection, host: str, port: int, timeout: float) -> BrokerRefused | None:
    options = connection.client_options()
    del options["bootstrap_servers"]
    conn = None
    try:
        conn = await asyncio.wait_for(
            create_conn(host, port, request_timeout_ms=int(timeout * 1000), **options), timeout
        )
        await asyncio.wait_for(conn.send(MetadataRequest([])), timeout)
        return None
    except Exception as exc:  # every failure is a reason to report; none may escape as a traceback
        return BrokerRefused(f"{_where(connection)}: {_reason(connection, exc)}", permanent=_permanent(exc))
    finally:
        if conn is not None:
            conn.close()


def _reason(connection: KafkaConnection, exc: BaseException) -> str:
    cause = exc.__cause__
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the broker's TLS certificate is not trusted ({exc.verify_message}): set EMOSTREAM_KAFKA_SSL_CAFILE to "
            "the CA that signed it"
        )
    if isinstance(exc, ssl.SSLError) or isinstance(cause, ssl.SSLError):
        error = exc if isinstance(exc, ssl.SSLError) else cause
        if "CERTIFICATE_REQUIRED" in str(error):
            return (
                "the broker requires a client certificate (mutual TLS): set EMOSTREAM_KAFKA_SSL_CERTFILE and "
                "EMOSTREAM_KAFKA_SSL_KEYFILE"
            )
        return f"the TLS handshake failed ({getattr(error, 'reason', None) or error})"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        if connection.uses_tls:
            return (
                "no answer to the TLS handshake: the listener is probably plaintext "
                "(EMOSTREAM_KAFKA_SECURITY_PROTOCOL=PLAINTEXT or SASL_PLAINTEXT)"
            )
        return "no answer from the broker in time"
    if isinstance(exc, SaslAuthenticationFailed) or (connection.uses_sasl and isinstance(exc, KeyError | ValueError)):
        return (
            f"the broker refused the SASL credentials of user {connection.username!r} ({connection.mechanism}): "
            "check EMOSTREAM_KAFKA_SASL_USERNAME and EMOSTREAM_KAFKA_SASL_PASSWORD (or _PASSWORD_FILE)"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        return (
            f"the broker does not offer SASL mechanism {connection.mechanism} (or no SASL on this listener): check "
            "EMOSTREAM_KAFKA_SASL_MECHANISM and EMOSTREAM_KAFKA_SECURITY_PROTOCOL"
        )
    if _closed_at_once(exc):
        if not connection.uses_tls:
            return (
                "the broker closed the connection at once: the listener probably expects TLS "
                "(EMOSTREAM_KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL)"
            )
        if not connection.certfile:
            return (
                "the broker closed the connection after the TLS handshake: it probably requires a client certificate "
                "(mutual TLS): set EMOSTREAM_KAFKA_SSL_CERTFILE and EMOSTREAM_KAFKA_SSL_KEYFILE"
            )
        return (
            "the broker closed the connection after the TLS handshake: it probably does not accept the client "
            "certificate (EMOSTREAM_KAFKA_SSL_CERTFILE), or expects SASL (EMOSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_SSL)"
        )
    if isinstance(exc, OSError):
        return f"cannot reach the broker ({exc.strerror or exc})"
    return f"{type(exc).__name__}: {exc}"


def _permanent(exc: BaseException) -> bool:
    """A refusal that retrying will not cure (a setting is wrong), as opposed to a broker that is away."""
    refused = (ssl.SSLError, SaslAuthenticationFailed, UnsupportedSaslMechanismError, KeyError, ValueError)
    return isinstance(exc, refused) or isinstance(exc.__cause__, ssl.SSLError) or _closed_at_once(exc)


def _closed_at_once(exc: BaseException) -> bool:
    """The broker accepted the TCP connection (and the TLS handshake, if any) and closed it before answering the
    first request: what a listener does with a client that does not speak its protocol or lacks a certificate."""
    return isinstance(exc, KafkaConnectionError) and (exc.__cause__ is None or isinstance(exc.__cause__, OSError))


def _first_broker(connection: KafkaConnection) -> tuple[str, int]:
    first = bootstrap_servers(connection.url).split(",")[0]
    host, _, port = first.rpartition(":")
    return (host.strip("[]") or first, int(port or 9092))


def _where(connection: KafkaConnection) -> str:
    return f"cannot use Kafka at {bootstrap_servers(connection.url)} ({connection.protocol})"


async def _close_quietly(client: Any) -> None:
    for method in ("stop", "close"):
        if hasattr(client, method):
            with contextlib.suppress(Exception):  # it never started: close only what it opened
                await getattr(client, method)()
            return
