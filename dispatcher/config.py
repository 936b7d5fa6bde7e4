"""Settings: the package's ``default.toml``, an optional override file, then the environment.

The defaults ship inside the package (``dispatcher/default.toml``, read with
:mod:`importlib.resources`), so an installed wheel runs from any directory; ``configs/`` in the
repository holds examples to copy (``configs/production.example.toml``).

Built once, as typed frozen objects, and validated at start-up: a bad value raises
:class:`~dispatcher.errors.ConfigError` naming the setting. Secrets are held in :class:`Secret`,
whose ``repr`` and ``str`` never show the value; they come only from the environment or from a
secrets file (``DISPATCHER_SECRETS_FILE``, TOML with the same keys as the environment).

Environment variables (the names operators rely on):

``DISPATCHER_CONFIG``                 an extra TOML file merged over the defaults
``DISPATCHER_STATE_DIR``              where the SQLite file and the embedded Redis live
``DATABASE_URL``                      default: SQLite under the state directory
``REDIS_URL``                         default: none, meaning the embedded Redis
``BROKER_URL``                        Celery's broker: ``amqp://`` for RabbitMQ; default: Redis
``DISPATCHER_BYTEHAND_URL`` ``_ID`` ``_KEY``
``DISPATCHER_TIMETOCHAT_URL`` ``_SERVICE_ID`` ``_PASSWORD`` ``_WEBHOOK_SECRET``
``DISPATCHER_TIMETOCHAT_TRANSPORT``   ``http`` (REST, the default) or ``smpp`` (the gateway)
``DISPATCHER_TIMETOCHAT_SMPP_URL`` ``_SMPP_SYSTEM_ID`` ``_SMPP_PASSWORD`` ``_SMPP_CA_FILE``
``DISPATCHER_DEFAULT_REGION``         default ``FR``
``DISPATCHER_API_TOKEN``              bearer token of the JSON API
``DISPATCHER_LOG_LEVEL``              DEBUG, INFO...; default: each process's own level
``DISPATCHER_METRICS_PUBLIC``         ``true``: ``GET /metrics`` without the API token

A configuration with ``[web] require_secrets = true`` (``configs/production.example.toml``)
refuses to load while any secret is missing, naming each one: in production an unset secret
must stop the process, not leave the API closed and callbacks refused at three in the morning.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import logging
import os
import tomllib
from collections.abc import Callable, Mapping
from datetime import timedelta
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from dispatcher.errors import ConfigError, DispatcherError
from dispatcher.logs import redact_url

_Number = TypeVar("_Number", int, float)

__all__ = [
    "AudienceSettings",
    "ByteHandSettings",
    "DispatchSettings",
    "PartSizes",
    "Secret",
    "Settings",
    "SmppSettings",
    "TimeToChatSettings",
    "load_settings",
]

DEFAULT_CONFIG = importlib.resources.files("dispatcher") / "default.toml"
"""The defaults, package data: every setting has a value here."""
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
BROKER_SCHEMES = ("redis", "rediss", "unix", *AMQP_SCHEMES)


class Secret:
    """A credential: never shown by ``repr``/``str``, so it cannot leak into logs by accident."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The value itself, for the one place that sends it to the provider."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclasses.dataclass(frozen=True)
class PartSizes:
    """How a provider splits a text: characters in one SMS and per part once split."""

    gsm7_single: int
    gsm7_part: int
    ucs2_single: int
    ucs2_part: int
    max_parts: int | None = None
    max_gsm7_chars: int | None = None
    max_ucs2_chars: int | None = None


@dataclasses.dataclass(frozen=True)
class ByteHandSettings:
    url: str
    client_id: str
    key: Secret
    price_per_part: float
    batch_size: int
    parts: PartSizes


@dataclasses.dataclass(frozen=True)
class SmppSettings:
    """TimeToChat's SMPP connector, used when ``[timetochat] transport = "smpp"``."""

    host: str = ""
    port: int = 5772
    tls: bool = True
    system_id: str = ""
    password: Secret = dataclasses.field(default_factory=lambda: Secret(""))
    ca_file: Path | None = None
    window: int = 10
    """submit_sm sent and not yet answered, at most."""
    enquire_link_s: float = 30.0
    response_timeout_s: float = 10.0
    lease_s: float = 10.0
    """The gateway's Redis lease: a standby takes over this long after the active one died."""
    external_reference_tag: int = 0x1400


@dataclasses.dataclass(frozen=True)
class TimeToChatSettings:
    url: str
    service_id: str
    password: Secret
    webhook_secret: Secret
    price_per_part: float
    token_lifetime: timedelta
    token_margin: timedelta
    parts: PartSizes
    transport: str = "http"
    smpp: SmppSettings = SmppSettings()
    numbers: tuple[str, ...] = ()
    """The service's ``09 3X`` numbers: a campaign's ``from`` must be one (checked at start)."""


@dataclasses.dataclass(frozen=True)
class DispatchSettings:
    """How fast and how carefully the fleet works."""

    calls_per_second: int
    feed_window: int
    max_attempts: int
    retry_base_s: float
    retry_max_s: float
    short_wait_s: float
    sending_timeout: timedelta
    queued_timeout: timedelta
    poll_after: timedelta
    poll_max_interval: timedelta
    poll_deadline: timedelta
    http_connect_timeout_s: float
    http_read_timeout_s: float
    record_patience_s: float
    """How long a provider's answer is retried into an unavailable database before it is
    logged for ops instead: the answer exists nowhere else."""


@dataclasses.dataclass(frozen=True)
class AudienceSettings:
    """Opt-outs, replies and quiet hours (README "Audience care")."""

    send_window: str
    send_days: str
    skip_public_holidays: bool
    default_timezone: str
    opt_out_keywords: tuple[str, ...]
    opt_in_keywords: tuple[str, ...]
    opt_out_scope: str
    reply_window: timedelta
    optout_mention: str
    append_optout_mention: bool


@dataclasses.dataclass(frozen=True)
class Settings:
    state_dir: Path
    database_url: str
    redis_url: str | None
    broker_url: str | None
    """``BROKER_URL``: an AMQP broker (RabbitMQ) or another Redis; ``None``: the Redis of
    ``redis_url``. Redis stays required for the limiter and the token cache."""
    default_region: str
    api_token: Secret
    max_upload_bytes: int
    metrics_public: bool
    """``GET /metrics`` without the API token (a scraper on a private network)."""
    log_level: str | None
    """``DISPATCHER_LOG_LEVEL`` for every process; ``None``: the level it was started with."""
    bytehand: ByteHandSettings
    timetochat: TimeToChatSettings
    dispatch: DispatchSettings
    audience: AudienceSettings

    @property
    def embedded_redis(self) -> bool:
        """No ``REDIS_URL``: the project starts its own Redis under the state directory."""
        return self.redis_url is None


_ENV_OVERRIDES: Mapping[str, tuple[str, ...]] = {
    "DATABASE_URL": ("database", "url"),
    "REDIS_URL": ("redis", "url"),
    "BROKER_URL": ("broker", "url"),
    "DISPATCHER_STATE_DIR": ("state", "dir"),
    "DISPATCHER_DEFAULT_REGION": ("dispatch", "default_region"),
    "DISPATCHER_BYTEHAND_URL": ("bytehand", "url"),
    "DISPATCHER_BYTEHAND_ID": ("bytehand", "id"),
    "DISPATCHER_TIMETOCHAT_URL": ("timetochat", "url"),
    "DISPATCHER_TIMETOCHAT_SERVICE_ID": ("timetochat", "service_id"),
    "DISPATCHER_CALLS_PER_SECOND": ("dispatch", "calls_per_second"),
    "DISPATCHER_TIMETOCHAT_TOKEN_LIFETIME_S": ("timetochat", "token_lifetime_s"),
    "DISPATCHER_TIMETOCHAT_TRANSPORT": ("timetochat", "transport"),
    "DISPATCHER_TIMETOCHAT_SMPP_URL": ("timetochat", "smpp_url"),
    "DISPATCHER_TIMETOCHAT_SMPP_SYSTEM_ID": ("timetochat", "smpp_system_id"),
    "DISPATCHER_TIMETOCHAT_SMPP_CA_FILE": ("timetochat", "smpp_ca_file"),
    "DISPATCHER_LOG_LEVEL": ("log", "level"),
    "DISPATCHER_METRICS_PUBLIC": ("web", "metrics_public"),
}

_SECRET_NAMES = (
    "DISPATCHER_BYTEHAND_KEY",
    "DISPATCHER_TIMETOCHAT_PASSWORD",
    "DISPATCHER_TIMETOCHAT_WEBHOOK_SECRET",
    "DISPATCHER_API_TOKEN",
    "DISPATCHER_TIMETOCHAT_SMPP_PASSWORD",
)
_SMPP_SECRETS = frozenset({"DISPATCHER_TIMETOCHAT_SMPP_PASSWORD"})
"""Required by ``require_secrets`` only when the SMPP transport is chosen."""


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path | Traversable, setting: str) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"{setting}: no such file {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{setting}: {path} is not valid TOML: {exc}") from exc


class _Reader:
    """Typed access to the merged tree; every error names the setting it is about."""

    def __init__(self, tree: Mapping[str, Any]) -> None:
        self.tree = tree

    def raw(self, section: str, key: str) -> Any:
        try:
            return self.tree[section][key]
        except KeyError as exc:
            raise ConfigError(f"{section}.{key}: missing from the configuration") from exc

    def string(self, section: str, key: str) -> str:
        value = self.raw(section, key)
        if not isinstance(value, str):
            raise ConfigError(f"{section}.{key}: expected a string, got {value!r}")
        return value

    def boolean(self, section: str, key: str) -> bool:
        value = self.raw(section, key)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"  # from the environment
        if not isinstance(value, bool):
            raise ConfigError(f"{section}.{key}: expected true or false, got {value!r}")
        return value

    def _at_least(
        self, section: str, key: str, kind: Callable[[Any], _Number], minimum: _Number
    ) -> _Number:
        value = self.raw(section, key)
        try:
            number = kind(value)
        except (TypeError, ValueError) as exc:
            expected = "an integer" if kind is int else "a number"
            raise ConfigError(f"{section}.{key}: expected {expected}, got {value!r}") from exc
        if number < minimum:
            raise ConfigError(f"{section}.{key}: must be at least {minimum}, got {number}")
        return number

    def number(self, section: str, key: str, *, minimum: float = 0) -> float:
        return self._at_least(section, key, float, minimum)

    def integer(self, section: str, key: str, *, minimum: int = 0) -> int:
        return self._at_least(section, key, int, minimum)

    def seconds(self, section: str, key: str) -> timedelta:
        return timedelta(seconds=self.number(section, key))

    def url(self, section: str, key: str) -> str:
        value = self.string(section, key).rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{section}.{key}: expected an http(s) URL, got {value!r}")
        return value

    def strings(self, section: str, key: str) -> tuple[str, ...]:
        value = self.raw(section, key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{section}.{key}: expected a list of strings, got {value!r}")
        return tuple(value)

    def parts(self, section: str) -> PartSizes:
        table = self.raw(section, "parts")
        sub = _Reader({"p": table})
        optional = {
            name: sub.integer("p", name, minimum=1)
            for name in ("max_parts", "max_gsm7_chars", "max_ucs2_chars")
            if name in table
        }
        return PartSizes(
            gsm7_single=sub.integer("p", "gsm7_single", minimum=1),
            gsm7_part=sub.integer("p", "gsm7_part", minimum=1),
            ucs2_single=sub.integer("p", "ucs2_single", minimum=1),
            ucs2_part=sub.integer("p", "ucs2_part", minimum=1),
            **optional,
        )


def _secrets(env: Mapping[str, str]) -> dict[str, Secret]:
    found: dict[str, str] = {}
    secrets_file = env.get("DISPATCHER_SECRETS_FILE")
    if secrets_file:
        for name, value in _read_toml(Path(secrets_file), "DISPATCHER_SECRETS_FILE").items():
            if name not in _SECRET_NAMES:
                raise ConfigError(f"DISPATCHER_SECRETS_FILE: unknown secret name {name!r}")
            found[name] = str(value)
    for name in _SECRET_NAMES:
        if env.get(name):
            found[name] = env[name]
    return {name: Secret(found.get(name, "")) for name in _SECRET_NAMES}


def _smpp(read: _Reader, password: Secret) -> SmppSettings:
    url = read.string("timetochat", "smpp_url")
    parts = urlsplit(url)
    if parts.scheme not in ("smpp", "smpps") or not parts.hostname:
        raise ConfigError(
            f"DISPATCHER_TIMETOCHAT_SMPP_URL: expected smpps://host:port or smpp://, got {url!r}"
        )
    try:
        port = parts.port or 5772
    except ValueError as exc:
        raise ConfigError(f"DISPATCHER_TIMETOCHAT_SMPP_URL: bad port in {url!r}") from exc
    ca_file = read.string("timetochat", "smpp_ca_file")
    if ca_file and not Path(ca_file).is_file():
        raise ConfigError(f"DISPATCHER_TIMETOCHAT_SMPP_CA_FILE: no such file {ca_file}")
    return SmppSettings(
        host=parts.hostname,
        port=port,
        tls=parts.scheme == "smpps",
        system_id=read.string("timetochat", "smpp_system_id"),
        password=password,
        ca_file=Path(ca_file) if ca_file else None,
        window=read.integer("timetochat", "smpp_window", minimum=1),
        enquire_link_s=read.number("timetochat", "smpp_enquire_link_s", minimum=1),
        response_timeout_s=read.number("timetochat", "smpp_response_timeout_s", minimum=0.1),
        lease_s=read.number("timetochat", "smpp_lease_s", minimum=1),
        external_reference_tag=read.integer(
            "timetochat", "smpp_external_reference_tag", minimum=0x1400
        ),
    )


def _log_level(read: _Reader) -> str | None:
    level = read.string("log", "level").strip().upper()
    if level and not isinstance(logging.getLevelName(level), int):
        raise ConfigError(
            f"DISPATCHER_LOG_LEVEL: expected DEBUG, INFO, WARNING or ERROR, got {level!r}"
        )
    return level or None


def _check_database_url(url: str) -> None:
    """A URL SQLAlchemy can use, with its driver installed; errors show it without password.

    SQLAlchemy's and the drivers' own messages may quote the URL, so none is chained.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    shown = redact_url(url)
    example = "e.g. postgresql+psycopg://user:password@host/db or sqlite:///path.db"
    if "://" not in url:
        raise ConfigError(f"DATABASE_URL: expected a SQLAlchemy URL ({example}), got {shown}")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(f"DATABASE_URL: cannot parse {shown} ({example})") from None
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        raise ConfigError(
            f"DATABASE_URL: unknown database {parsed.drivername!r} in {shown} ({example})"
        ) from None
    except ImportError:
        raise ConfigError(
            f"DATABASE_URL: the driver of {parsed.drivername!r} is not installed ({example})"
        ) from None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise :class:`ConfigError` on the first bad one."""
    env = os.environ if env is None else env
    tree = _read_toml(DEFAULT_CONFIG, "the package's default.toml")
    extra = env.get("DISPATCHER_CONFIG")
    if extra:
        tree = _merge(tree, _read_toml(Path(extra), "DISPATCHER_CONFIG"))
    for name, (section, key) in _ENV_OVERRIDES.items():
        if env.get(name):
            tree = _merge(tree, {section: {key: env[name]}})
    read = _Reader(tree)
    secrets = _secrets(env)
    transport = read.string("timetochat", "transport")
    if transport not in ("http", "smpp"):
        raise ConfigError(
            f"DISPATCHER_TIMETOCHAT_TRANSPORT: expected http or smpp, got {transport!r}"
        )
    if read.boolean("web", "require_secrets"):
        needed = [n for n in _SECRET_NAMES if transport == "smpp" or n not in _SMPP_SECRETS]
        missing = [name for name in needed if not secrets[name]]
        if missing:
            raise ConfigError(
                f"web.require_secrets: missing {', '.join(missing)} "
                "(set them in the environment or in DISPATCHER_SECRETS_FILE)"
            )

    state_dir = Path(read.string("state", "dir")).expanduser()
    if not state_dir.is_absolute():
        state_dir = Path.cwd() / state_dir
    database_url = read.string("database", "url") or f"sqlite:///{state_dir / 'dispatcher.db'}"
    _check_database_url(database_url)
    redis_url = read.string("redis", "url") or None
    if redis_url is not None and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("REDIS_URL: expected a redis://, rediss:// or unix:// URL")
    broker_url = read.string("broker", "url") or None
    if broker_url is not None and urlsplit(broker_url).scheme not in BROKER_SCHEMES:
        raise ConfigError(
            f"BROKER_URL: expected one of {', '.join(s + '://' for s in BROKER_SCHEMES)} URLs"
        )
    import phonenumbers  # its metadata tables: not for `dispatcher --help`

    region = read.string("dispatch", "default_region").upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"DISPATCHER_DEFAULT_REGION: unknown region {region!r}")

    dispatch = DispatchSettings(
        calls_per_second=read.integer("dispatch", "calls_per_second", minimum=1),
        feed_window=read.integer("dispatch", "feed_window", minimum=1),
        max_attempts=read.integer("dispatch", "max_attempts", minimum=1),
        retry_base_s=read.number("dispatch", "retry_base_s"),
        retry_max_s=read.number("dispatch", "retry_max_s"),
        short_wait_s=read.number("dispatch", "short_wait_s"),
        sending_timeout=read.seconds("dispatch", "sending_timeout_s"),
        queued_timeout=read.seconds("dispatch", "queued_timeout_s"),
        poll_after=read.seconds("dispatch", "poll_after_s"),
        poll_max_interval=read.seconds("dispatch", "poll_max_interval_s"),
        poll_deadline=read.seconds("dispatch", "poll_deadline_s"),
        http_connect_timeout_s=read.number("dispatch", "http_connect_timeout_s", minimum=0.01),
        http_read_timeout_s=read.number("dispatch", "http_read_timeout_s", minimum=0.01),
        record_patience_s=read.number("dispatch", "record_patience_s", minimum=0.0),
    )
    bytehand = ByteHandSettings(
        url=read.url("bytehand", "url"),
        client_id=read.string("bytehand", "id"),
        key=secrets["DISPATCHER_BYTEHAND_KEY"],
        price_per_part=read.number("bytehand", "price_per_part"),
        batch_size=read.integer("bytehand", "batch_size", minimum=1),
        parts=read.parts("bytehand"),
    )
    timetochat = TimeToChatSettings(
        url=read.url("timetochat", "url"),
        service_id=read.string("timetochat", "service_id"),
        password=secrets["DISPATCHER_TIMETOCHAT_PASSWORD"],
        webhook_secret=secrets["DISPATCHER_TIMETOCHAT_WEBHOOK_SECRET"],
        price_per_part=read.number("timetochat", "price_per_part"),
        token_lifetime=read.seconds("timetochat", "token_lifetime_s"),
        token_margin=read.seconds("timetochat", "token_margin_s"),
        parts=read.parts("timetochat"),
        transport=transport,
        smpp=_smpp(read, secrets["DISPATCHER_TIMETOCHAT_SMPP_PASSWORD"]),
        numbers=read.strings("timetochat", "numbers"),
    )
    if timetochat.token_margin >= timetochat.token_lifetime:
        raise ConfigError("timetochat.token_margin_s: must be shorter than token_lifetime_s")
    return Settings(
        state_dir=state_dir,
        database_url=database_url,
        redis_url=redis_url,
        broker_url=broker_url,
        default_region=region,
        api_token=secrets["DISPATCHER_API_TOKEN"],
        max_upload_bytes=read.integer("web", "max_upload_bytes", minimum=1),
        metrics_public=read.boolean("web", "metrics_public"),
        log_level=_log_level(read),
        bytehand=bytehand,
        timetochat=timetochat,
        dispatch=dispatch,
        audience=_audience(read),
    )


def _audience(read: _Reader) -> AudienceSettings:
    from dispatcher.windows import SendRules  # the rules validate their own syntax

    audience = AudienceSettings(
        send_window=read.string("audience", "send_window"),
        send_days=read.string("audience", "send_days"),
        skip_public_holidays=read.boolean("audience", "skip_public_holidays"),
        default_timezone=read.string("audience", "default_timezone"),
        opt_out_keywords=read.strings("audience", "opt_out_keywords"),
        opt_in_keywords=read.strings("audience", "opt_in_keywords"),
        opt_out_scope=read.string("audience", "opt_out_scope"),
        reply_window=read.seconds("audience", "reply_window_s"),
        optout_mention=read.string("audience", "optout_mention"),
        append_optout_mention=read.boolean("audience", "append_optout_mention"),
    )
    if audience.opt_out_scope not in ("account", "global"):
        raise ConfigError('audience.opt_out_scope: expected "account" or "global"')
    try:
        SendRules(audience.send_window, audience.send_days, audience.default_timezone)
    except DispatcherError as exc:
        raise ConfigError(f"audience: {exc}") from exc
    return audience
