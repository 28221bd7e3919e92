"""Kafka security: settings that fit together, one mapping to aiokafka and Faust options, secrets kept out of sight."""

from __future__ import annotations

import ssl
import subprocess

import faust
import pytest

from emostream.settings import Settings, SettingsError
from stream.kafka.connection import KafkaConnection, bootstrap_servers, client_options

SECRET = "S3cretPw-do-not-print"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A throwaway CA and a client certificate signed by it (openssl), PEM files."""
    folder = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=emostream test CA",
    )
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=worker"
    )
    openssl(
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "client.pem",
        "-days",
        "1",
    )
    return folder


def test_plaintext_by_default_and_a_plain_url_needs_no_settings():
    connection = KafkaConnection.of(Settings(broker_url="kafka://a:9092;kafka://b:9093"))
    assert connection.client_options() == {"bootstrap_servers": "a:9092,b:9093", "security_protocol": "PLAINTEXT"}
    assert connection.faust_credentials() is None
    assert client_options("kafka://h:1") == {"bootstrap_servers": "h:1", "security_protocol": "PLAINTEXT"}
    assert bootstrap_servers("kafka://h1:9092, kafka://h2:9092/") == "h1:9092,h2:9092"


def test_sasl_over_tls_with_a_password_file_maps_to_aiokafka_and_faust(tmp_path, certificates):
    secret = tmp_path / "password"
    secret.write_text(SECRET + "\n")
    settings = Settings.from_env(
        {
            "EMOSTREAM_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "EMOSTREAM_KAFKA_SASL_MECHANISM": "scram-sha-512",
            "EMOSTREAM_KAFKA_SASL_USERNAME": "worker",
            "EMOSTREAM_KAFKA_SASL_PASSWORD_FILE": str(secret),
            "EMOSTREAM_KAFKA_SSL_CAFILE": str(certificates / "ca.pem"),
        }
    )
    connection = KafkaConnection.of(settings)
    options = connection.client_options()
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("worker", SECRET)
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED and options["ssl_context"].check_hostname
    credentials = connection.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials) and credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512" and credentials.password == SECRET
    assert SECRET not in repr(connection) and SECRET not in repr(settings)


def test_mutual_tls_presents_the_client_certificate(certificates):
    settings = Settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=str(certificates / "ca.pem"),
        kafka_ssl_certfile=str(certificates / "client.pem"),
        kafka_ssl_keyfile=str(certificates / "client.key"),
    )
    connection = KafkaConnection.of(settings)
    assert set(connection.client_options()) == {"bootstrap_servers", "security_protocol", "ssl_context"}
    credentials = connection.faust_credentials()
    assert isinstance(credentials, faust.SSLCredentials) and credentials.protocol.value == "SSL"


def test_a_password_is_never_printed_even_in_settings_errors():
    with pytest.raises(SettingsError) as refused:
        Settings(broker_url=f"kafka://alice:{SECRET}@host:9092")
    assert SECRET not in str(refused.value) and "KAFKA_SASL_USERNAME" in str(refused.value)
    assert SECRET not in repr(
        Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u", kafka_sasl_password=SECRET)
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kafka_security_protocol": "KERBEROS"}, "expected one of"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "expected one of"),
        ({"kafka_security_protocol": "SASL_SSL"}, "needs EMOSTREAM_KAFKA_SASL_USERNAME"),
        ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "u"}, "one of"),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_username": "u",
                "kafka_sasl_password": "p",
                "kafka_sasl_password_file": "/etc/hostname",
            },
            "one of",
        ),
        ({"kafka_sasl_username": "u"}, "does not use SASL"),
        ({"kafka_ssl_cafile": "/etc/hostname"}, "does not use TLS"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "/etc/hostname"}, "go together"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/no/such/ca.pem"}, "no such file"),
    ],
)
def test_security_settings_that_do_not_fit_are_refused_with_a_clear_error(values, message):
    with pytest.raises(SettingsError, match=message):
        Settings(**values)
