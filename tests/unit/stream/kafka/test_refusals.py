"""Refusals explained: each way a broker refuses a client names the setting to fix, says whether retrying can help, and
never shows the password. (Against a real TLS broker: tests/integration/test_tls.py.)"""

from __future__ import annotations

import ssl

import pytest
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed, UnsupportedSaslMechanismError

from stream.broker import free_port
from stream.kafka.connection import KafkaConnection
from stream.kafka.refusals import BrokerRefused, _permanent, _reason, check_brokers, start_client

TLS = KafkaConnection("kafka://broker:9093", "SSL", cafile="/ca.pem")
SASL = KafkaConnection("kafka://broker:9093", "SASL_SSL", mechanism="SCRAM-SHA-512", username="svc", password="S3cret")
PLAIN = KafkaConnection("kafka://broker:9092")


def untrusted() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    error.verify_message = "self-signed certificate in certificate chain"
    return error


def caused(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("connection", "exc", "says", "permanent"),
    [
        (TLS, untrusted(), ["not trusted", "self-signed", "EMOSTREAM_KAFKA_SSL_CAFILE"], True),
        (
            TLS,
            caused(KafkaConnectionError("closed"), ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] alert")),
            ["requires a client certificate", "EMOSTREAM_KAFKA_SSL_CERTFILE", "EMOSTREAM_KAFKA_SSL_KEYFILE"],
            True,
        ),
        (TLS, KafkaConnectionError("closed"), ["probably requires a client certificate", "_CERTFILE"], True),
        (
            KafkaConnection("kafka://b:9093", "SSL", certfile="/c.pem", keyfile="/c.key"),
            caused(KafkaConnectionError("closed"), ConnectionResetError(104, "reset")),
            ["does not accept the client certificate"],
            True,
        ),
        (TLS, TimeoutError(), ["TLS handshake", "plaintext"], False),
        (SASL, SaslAuthenticationFailed(), ["refused the SASL credentials", "'svc'", "SCRAM-SHA-512"], True),
        (SASL, KeyError("v"), ["refused the SASL credentials"], True),  # aiokafka on a SCRAM `e=` answer
        (SASL, UnsupportedSaslMechanismError(), ["does not offer SASL mechanism SCRAM-SHA-512"], True),
        (PLAIN, caused(KafkaConnectionError("closed"), ConnectionResetError(104, "reset")), ["expects TLS"], True),
        (PLAIN, ConnectionRefusedError(111, "Connect call failed"), ["cannot reach the broker"], False),
    ],
    ids=[
        "untrusted",
        "no-client-cert",
        "closed-no-cert",
        "closed-cert",
        "tls-to-plaintext",
        "sasl",
        "scram-e",
        "mechanism",
        "plain-to-tls",
        "away",
    ],
)
def test_each_refusal_names_its_cause_and_whether_retrying_helps(connection, exc, says, permanent):
    reason = _reason(connection, exc)
    assert all(part in reason for part in says), reason
    assert "S3cret" not in reason
    assert _permanent(exc) is permanent


async def test_a_broker_that_is_away_is_not_a_permanent_refusal():
    connection = KafkaConnection(f"kafka://127.0.0.1:{free_port()}")
    with pytest.raises(BrokerRefused) as refused:
        await check_brokers(connection)
    assert not refused.value.permanent
    assert str(refused.value).startswith(f"cannot use Kafka at 127.0.0.1:{connection.url.rsplit(':', 1)[1]}")


class FailingClient:
    """Stands for an aiokafka client whose start fails with ``error`` (the wrapper's routing is what is tested)."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.stopped = False

    async def start(self) -> None:
        raise self.error

    async def stop(self) -> None:
        self.stopped = True


async def test_a_key_error_outside_a_sasl_exchange_is_a_bug_and_keeps_its_traceback():
    with pytest.raises(KeyError):
        await start_client(FailingClient(KeyError("x")), PLAIN)


async def test_a_failed_start_is_explained_and_the_client_closed():
    client = FailingClient(KafkaConnectionError("Unable to bootstrap"))
    with pytest.raises(BrokerRefused, match="cannot reach the broker"):
        await start_client(client, KafkaConnection(f"kafka://127.0.0.1:{free_port()}"))
    assert client.stopped
