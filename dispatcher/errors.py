"""The dispatcher's one exception tree.

Whether an error is retried, fails a recipient or needs ops is decided by its class, never by
matching strings::

    DispatcherError
    ├── ConfigError              a setting is missing or invalid; raised at start-up
    ├── InputError               a recipient file, template or schedule we cannot use
    ├── WebhookAuthError         a provider callback with the wrong credentials (answer 403)
    ├── WebhookPayloadError      a provider callback we cannot parse (answer 400)
    ├── RateLimiterUnavailable   the shared limiter's Redis cannot be reached: fail closed
    └── ProviderError            anything a provider call can end in
        ├── ProviderUnavailable  transient: retry later (``retry_after`` seconds when known)
        │   └── ProviderThrottled    the provider's own rate limit (429 / ByteHand 17)
        ├── CredentialsExpired   refresh the token once, then retry the call
        ├── AccountBlocked       the account cannot send at all (auth failed, quota): pause
        ├── ProviderRejected     permanent for this recipient, with the provider's reason
        └── SendInDoubt          the request may have reached the provider: never resend blindly

Foreign exceptions (httpx, redis, SQLAlchemy) become these at exactly one boundary each, with
``raise ... from exc``.
"""

from __future__ import annotations

__all__ = [
    "AccountBlocked",
    "ConfigError",
    "CredentialsExpired",
    "DispatcherError",
    "InputError",
    "ProviderError",
    "ProviderRejected",
    "ProviderThrottled",
    "ProviderUnavailable",
    "RateLimiterUnavailable",
    "SendInDoubt",
    "WebhookAuthError",
    "WebhookPayloadError",
]


class DispatcherError(Exception):
    """Base of every error the dispatcher raises on purpose."""


class ConfigError(DispatcherError):
    """A setting is missing or invalid; the message names the setting, never its secret value."""


class InputError(DispatcherError):
    """Input we cannot use: the message is one line a marketer can act on."""

    def __init__(self, message: str, *, code: str = "invalid_input") -> None:
        super().__init__(message)
        self.code = code


class WebhookAuthError(DispatcherError):
    """A callback whose credentials do not match the account: forged or misrouted."""


class WebhookPayloadError(DispatcherError):
    """A callback whose body or query we cannot parse."""


class RateLimiterUnavailable(DispatcherError):
    """The shared limiter cannot be asked; no call may be made (fail closed)."""


class ProviderError(DispatcherError):
    """A provider call did not succeed. ``code`` is the provider's own code when it gave one."""

    def __init__(self, message: str, *, provider: str, code: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.code = code

    @property
    def reason(self) -> str:
        """A short, stable reason stored on the recipient: ``provider:code message``."""
        prefix = f"{self.provider}:{self.code}" if self.code is not None else self.provider
        return f"{prefix} {self}"


class ProviderUnavailable(ProviderError):
    """Transient: the same call may succeed later."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, code=code)
        self.retry_after = retry_after


class ProviderThrottled(ProviderUnavailable):
    """The provider's rate limit refused the call: a bug signal for our limiter, then a retry."""


class CredentialsExpired(ProviderError):
    """The token was refused: refresh it once and retry the call."""


class AccountBlocked(ProviderError):
    """The account cannot send (bad credentials, quota reached, test account expired)."""


class ProviderRejected(ProviderError):
    """Permanent for this recipient: resending the same request would fail the same way."""


class SendInDoubt(ProviderError):
    """The request may have reached the provider (timeout after sending, dropped connection,
    a 5xx with an unknown body): the recipient must be reconciled, not resent."""
