"""Notification channels: adapters behind one interface (通知渠道).

A ``Channel`` sends one ``Notice`` or raises ``DeliveryFailed``; the delivery job records the
outcome and retries failures with back-off. Channels:

- ``inbox``: the in-app inbox, written in the database and pushed to open browsers by the
  server-sent-event stream (``/api/inbox/stream``);
- ``sms`` / ``voice``: a gateway: ``HttpGateway`` posts JSON to a configured SMS/voice provider
  bridge, ``RecordingGateway`` keeps what it was given (tests, the demo);
- ``webhook``: JSON posted to a configured URL, signed with HMAC-SHA256 over
  ``"{timestamp}.{body}"`` in ``X-Yiyang-Signature: sha256=<hex>`` (``X-Yiyang-Timestamp``).

A notice carries no personal data: the alert's kind, severity and id, and the resident's
registry id; who receives it is a user account id the gateway maps to a number.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import threading
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import orjson
from pydantic_settings import BaseSettings, SettingsConfigDict


@dataclass(frozen=True, slots=True)
class Notice:
    alert_id: int
    kind: str
    severity: str
    resident_id: int
    step: int
    channel: str
    user_id: int | None
    text_zh: str
    text_en: str
    link: str
    raised_at: str


class DeliveryFailed(Exception):
    """The channel could not deliver; the message names the reason without personal data."""


class Channel(Protocol):
    def send(self, notice: Notice) -> None: ...


@dataclass
class RecordingGateway:
    """Keeps every notice it is given: the SMS/voice gateway for tests and the demo."""

    sent: list[Notice] = field(default_factory=list)
    fail_next: int = 0  # tests: fail this many sends first
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, notice: Notice) -> None:
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                raise DeliveryFailed("gateway refused (recorded failure)")
            self.sent.append(notice)


@dataclass
class HttpGateway:
    """An SMS/voice provider bridge: POST ``{"channel", "user_id", "text", ...}`` as JSON."""

    url: str
    token: str | None = None
    timeout: float = 5.0

    def send(self, notice: Notice) -> None:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        _post(self.url, orjson.dumps(asdict(notice)), headers, self.timeout)


@dataclass
class Webhook:
    url: str
    secret: str
    timeout: float = 5.0

    def send(self, notice: Notice) -> None:
        body = orjson.dumps(asdict(notice))
        timestamp = str(int(dt.datetime.now(dt.UTC).timestamp()))
        headers = {
            "Content-Type": "application/json",
            "X-Yiyang-Timestamp": timestamp,
            "X-Yiyang-Signature": "sha256=" + sign(self.secret, timestamp, body),
        }
        _post(self.url, body, headers, self.timeout)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    try:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - configured URL
            if response.status >= 300:
                raise DeliveryFailed(f"HTTP {response.status}")
    except urllib.error.HTTPError as error:
        raise DeliveryFailed(f"HTTP {error.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise DeliveryFailed(f"unreachable ({type(error).__name__})") from None
    except http.client.HTTPException as error:  # not HTTP at all, or cut off mid-reply
        raise DeliveryFailed(f"bad reply ({type(error).__name__})") from None
    except ValueError as error:  # a URL or token urllib cannot use: configuration, so it gives up in time
        raise DeliveryFailed(f"unusable URL or token ({type(error).__name__})") from None


class AlertSettings(BaseSettings):
    """Channels from the environment (prefix ``YIYANG_ALERTS_``)."""

    model_config = SettingsConfigDict(env_prefix="YIYANG_ALERTS_", env_file=".env", extra="ignore")

    sms_gateway: str = "recording"  # recording | http | off
    sms_url: str | None = None
    sms_token: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    max_attempts: int = 5
    deadline_slack_s: int = 600


@dataclass
class Notifier:
    """The channels in use, by name. ``inbox`` is written by the service itself."""

    channels: dict[str, Channel] = field(default_factory=dict)
    max_attempts: int = 5

    @property
    def webhook(self) -> bool:
        return "webhook" in self.channels

    def channel(self, name: str) -> Channel | None:
        return self.channels.get(name)


_recording = RecordingGateway()


def recording_gateway() -> RecordingGateway:
    """The process's recording gateway (what ``sms_gateway=recording`` sends to)."""
    return _recording


def notifier_from_settings(settings: AlertSettings | None = None) -> Notifier:
    settings = settings or AlertSettings()
    channels: dict[str, Any] = {}
    if settings.sms_gateway == "http" and settings.sms_url:
        gateway: Channel = HttpGateway(settings.sms_url, settings.sms_token)
        channels["sms"] = channels["voice"] = gateway
    elif settings.sms_gateway == "recording":
        channels["sms"] = channels["voice"] = _recording
    if settings.webhook_url and settings.webhook_secret:
        channels["webhook"] = Webhook(settings.webhook_url, settings.webhook_secret)
    return Notifier(channels, settings.max_attempts)
