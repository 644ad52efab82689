"""The HTTP channels against a real local HTTP server: the SMS gateway bridge and the signed webhook."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import orjson
import pytest

from yiyang.alerts.channels import (
    AlertSettings,
    DeliveryFailed,
    HttpGateway,
    Notice,
    Webhook,
    notifier_from_settings,
)

NOTICE = Notice(
    7,
    "fall",
    "critical",
    42,
    0,
    "webhook",
    None,
    "跌倒：居民 #42",
    "fall: resident #42",
    "/alerts/7",
    "2026-11-24T02:00:00+00:00",
)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


def test_the_webhook_signs_timestamp_and_body_with_hmac_sha256(receiver: Receiver) -> None:
    Webhook(receiver.url, "s3cret").send(NOTICE)
    ((headers, body),) = receiver.requests
    expected = hmac.new(
        b"s3cret", headers["X-Yiyang-Timestamp"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert headers["X-Yiyang-Signature"] == f"sha256={expected}"
    payload = orjson.loads(body)
    assert payload["alert_id"] == 7 and payload["kind"] == "fall" and payload["resident_id"] == 42


def test_the_sms_gateway_bridge_posts_json_with_its_token_and_reports_refusals(receiver: Receiver) -> None:
    gateway = HttpGateway(receiver.url, token="tok")
    gateway.send(NOTICE)
    assert receiver.requests[0][0]["Authorization"] == "Bearer tok"
    receiver.status = 503
    with pytest.raises(DeliveryFailed, match="HTTP 503"):
        gateway.send(NOTICE)
    with pytest.raises(DeliveryFailed, match="unreachable"):
        HttpGateway("http://127.0.0.1:9/none", timeout=1).send(NOTICE)


def test_channels_come_from_settings() -> None:
    notifier = notifier_from_settings(
        AlertSettings(
            sms_gateway="http",
            sms_url="http://gw.invalid/sms",
            webhook_url="http://hook.invalid",
            webhook_secret="x",
        )
    )
    assert isinstance(notifier.channel("sms"), HttpGateway) and notifier.webhook
    assert notifier_from_settings(AlertSettings(sms_gateway="off")).channel("sms") is None


class NotHttp:
    """A port that answers every request with something that is not HTTP (a wrong port, a proxy
    gone bad): the gateway bridge as a district may meet it."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/sms"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                connection.sendall(b"220 not http\r\n\r\n")


def test_a_reply_that_is_not_http_or_a_url_urllib_cannot_use_is_a_failed_delivery() -> None:
    # given a gateway that answers garbage, and one configured with an unusable URL
    garbage = NotHttp()
    try:
        # when a notice is sent, then each is a DeliveryFailed the job retries and gives up on
        with pytest.raises(DeliveryFailed, match="bad reply"):
            HttpGateway(garbage.url, timeout=2).send(NOTICE)
        with pytest.raises(DeliveryFailed, match="unusable URL"):
            HttpGateway("sms-gateway.local/send").send(NOTICE)
        with pytest.raises(DeliveryFailed, match="unusable URL"):
            Webhook("sms-gateway.local/hook", "s3cret").send(NOTICE)
    finally:
        garbage.listener.close()
