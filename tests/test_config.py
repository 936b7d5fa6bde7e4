"""Settings: defaults, environment overrides, validation that names the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatcher.config import Secret, load_settings
from dispatcher.errors import ConfigError


def test_defaults_use_embedded_services(tmp_path: Path) -> None:
    """With nothing set: SQLite under the state dir, embedded Redis, region FR."""
    settings = load_settings({"DISPATCHER_STATE_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'dispatcher.db'}"
    assert settings.embedded_redis
    assert settings.default_region == "FR"
    assert settings.dispatch.calls_per_second == 20


def test_environment_overrides_file() -> None:
    """The documented variables override the TOML defaults."""
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql+psycopg://u@127.0.0.1/db",
            "REDIS_URL": "redis://127.0.0.1:6379/1",
            "DISPATCHER_BYTEHAND_URL": "http://127.0.0.1:9999/",
            "DISPATCHER_BYTEHAND_ID": "42",
            "DISPATCHER_DEFAULT_REGION": "ru",
        }
    )
    assert settings.redis_url == "redis://127.0.0.1:6379/1"
    assert settings.bytehand.url == "http://127.0.0.1:9999"
    assert settings.bytehand.client_id == "42"
    assert settings.default_region == "RU"


def test_broker_url_defaults_to_redis_and_may_name_rabbitmq() -> None:
    """No ``BROKER_URL``: the broker is the Redis; set, it names RabbitMQ."""
    assert load_settings({}).broker_url is None
    amqp = "amqp://guest:guest@127.0.0.1:5672/dispatcher"
    assert load_settings({"BROKER_URL": amqp}).broker_url == amqp


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DISPATCHER_DEFAULT_REGION": "XX"}, "DISPATCHER_DEFAULT_REGION"),
        ({"REDIS_URL": "http://nope"}, "REDIS_URL"),
        ({"BROKER_URL": "kafka://127.0.0.1"}, "BROKER_URL"),
        ({"DISPATCHER_BYTEHAND_URL": "ftp://x"}, "bytehand.url"),
        ({"DISPATCHER_CALLS_PER_SECOND": "fast"}, "dispatch.calls_per_second"),
        ({"DISPATCHER_CALLS_PER_SECOND": "0"}, "dispatch.calls_per_second"),
        ({"DATABASE_URL": "dispatcher.db"}, "DATABASE_URL"),
    ],
)
def test_bad_value_names_the_setting(env: dict[str, str], named: str) -> None:
    """A bad value fails at once, and the message says which setting."""
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(env)


def test_secrets_never_shown() -> None:
    """Secrets come from the environment and never appear in repr or str."""
    settings = load_settings({"DISPATCHER_BYTEHAND_KEY": "s3cr3t-key-value"})
    assert settings.bytehand.key.reveal() == "s3cr3t-key-value"
    assert "s3cr3t" not in repr(settings)
    assert "s3cr3t" not in str(settings.bytehand.key)
    assert Secret("a") == Secret("a")


def test_secrets_file(tmp_path: Path) -> None:
    """A secrets file supplies credentials; an unknown name in it is refused."""
    good = tmp_path / "secrets.toml"
    good.write_text('DISPATCHER_TIMETOCHAT_PASSWORD = "pw"\n')
    settings = load_settings({"DISPATCHER_SECRETS_FILE": str(good)})
    assert settings.timetochat.password.reveal() == "pw"
    bad = tmp_path / "bad.toml"
    bad.write_text('PASSWORD = "pw"\n')
    with pytest.raises(ConfigError, match="DISPATCHER_SECRETS_FILE"):
        load_settings({"DISPATCHER_SECRETS_FILE": str(bad)})


def test_smpp_transport_settings_from_the_environment(tmp_path: Path) -> None:
    """The SMPP variables: transport, URL (TLS for smpps, port), system id, CA file."""
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = load_settings(
        {
            "DISPATCHER_TIMETOCHAT_TRANSPORT": "smpp",
            "DISPATCHER_TIMETOCHAT_SMPP_URL": "smpps://smsc.example:5773",
            "DISPATCHER_TIMETOCHAT_SMPP_SYSTEM_ID": "svc",
            "DISPATCHER_TIMETOCHAT_SMPP_PASSWORD": "pw",
            "DISPATCHER_TIMETOCHAT_SMPP_CA_FILE": str(ca),
        }
    )
    smpp = settings.timetochat.smpp
    assert settings.timetochat.transport == "smpp"
    assert (smpp.host, smpp.port, smpp.tls, smpp.system_id) == ("smsc.example", 5773, True, "svc")
    assert smpp.ca_file == ca
    assert smpp.password.reveal() == "pw"
    assert "pw" not in repr(settings)
    plain = load_settings({"DISPATCHER_TIMETOCHAT_SMPP_URL": "smpp://127.0.0.1:2775"})
    assert (plain.timetochat.transport, plain.timetochat.smpp.tls) == ("http", False)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DISPATCHER_TIMETOCHAT_TRANSPORT": "carrier-pigeon"}, "DISPATCHER_TIMETOCHAT_TRANSPORT"),
        ({"DISPATCHER_TIMETOCHAT_SMPP_URL": "https://h:5772"}, "DISPATCHER_TIMETOCHAT_SMPP_URL"),
        ({"DISPATCHER_TIMETOCHAT_SMPP_URL": "smpps://h:port"}, "DISPATCHER_TIMETOCHAT_SMPP_URL"),
        ({"DISPATCHER_TIMETOCHAT_SMPP_CA_FILE": "/nonexistent"}, "SMPP_CA_FILE"),
    ],
)
def test_bad_smpp_setting_is_named(env: dict[str, str], named: str) -> None:
    """A bad SMPP setting stops start-up with the variable's name."""
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_production_requires_the_smpp_password_only_with_the_smpp_transport() -> None:
    """require_secrets asks for DISPATCHER_TIMETOCHAT_SMPP_PASSWORD only when transport=smpp."""
    production = {
        "DISPATCHER_CONFIG": str(Path(__file__).parent.parent / "configs/production.example.toml"),
        "DISPATCHER_API_TOKEN": "t",
        "DISPATCHER_BYTEHAND_KEY": "k",
        "DISPATCHER_TIMETOCHAT_PASSWORD": "p",
        "DISPATCHER_TIMETOCHAT_WEBHOOK_SECRET": "w",
    }
    assert load_settings(production).timetochat.transport == "http"
    with pytest.raises(ConfigError, match="DISPATCHER_TIMETOCHAT_SMPP_PASSWORD"):
        load_settings({**production, "DISPATCHER_TIMETOCHAT_TRANSPORT": "smpp"})
