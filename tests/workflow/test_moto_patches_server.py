"""moto's server (chute/local/moto_patches/server.py): the request filter of injected faults,
the cached service lookup.

How these tests go: tests/support/moto_patches.py.
"""

from __future__ import annotations

import email.feedparser
import http.client
import io
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from chute.local.embedded import EmbeddedAws, free_port
from tests.support.moto_patches import without


# --- request-filter (hook) --------------------------------------------------------------------
def test_injected_s3_faults_are_answered_through_the_request_filter(embedded: EmbeddedAws) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=embedded.endpoint_url,
        region_name=embedded.settings.region,
        aws_access_key_id="probe",
        aws_secret_access_key="probe",
        config=Config(retries={"total_max_attempts": 1}),
    )
    bucket, key = embedded.resources.output_bucket, "request-filter-probe/x"
    s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    embedded.faults.add(f"s3:GetObject:503:1:{key}")
    try:
        # without the hook the rule is never consulted: the request is served
        with without("request-filter"):
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"x"
        # with it, the armed rule answers S3's own error
        with pytest.raises(ClientError) as error:
            s3.get_object(Bucket=bucket, Key=key)
        assert error.value.response["Error"]["Code"] == "SlowDown"
        s3.delete_object(Bucket=bucket, Key=key)
    finally:
        embedded.faults.clear()


@contextmanager
def _count_module_scans() -> Iterator[list[int]]:
    from moto import backends

    real = backends.list_of_moto_modules
    calls = [0]

    def counting() -> Any:
        calls[0] += 1
        return real()

    backends.list_of_moto_modules = counting  # type: ignore[assignment]
    try:
        yield calls
    finally:
        backends.list_of_moto_modules = real  # type: ignore[assignment]


def test_requests_find_their_service_without_scanning_moto(probe: dict[str, Any]) -> None:
    probe["s3"].head_bucket(Bucket="probe-bucket")  # this host is known from here on
    with _count_module_scans() as scans:
        for _ in range(3):
            probe["s3"].head_bucket(Bucket="probe-bucket")
    assert scans[0] == 0


@pytest.mark.canary
def test_canary_every_request_still_scans_moto(probe: dict[str, Any]) -> None:
    with without("server-dispatch-cache"), _count_module_scans() as scans:
        probe["s3"].head_bucket(Bucket="probe-bucket")
    assert scans[0] > 0


# --- http-headers-fast-parse (speed) ----------------------------------------------------------
HEADER_BLOCKS = [
    b"Host: 127.0.0.1:4566\r\nAccept-Encoding: identity\r\nUser-Agent: Boto3/1.40 md/x\r\n"
    b"X-Amz-Date: 20261207T031500Z\r\nContent-Length: 12\r\n\r\n",
    b"Content-Type: application/xml\r\nx-amz-meta-a:tight\r\nx-amz-meta-b:   padded  \r\n"
    b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nEmpty:\r\n\r\n",
    b"Weird: value: with: colons\r\nLatin: caf\xe9\r\n\r\n",
    b"Bare-LF: yes\nOther: too\n\n",
    b"Folded: first\r\n  second line\r\nAfter: x\r\n\r\n",  # to the email parser
    b"No colon here\r\nHost: x\r\n\r\n",  # to the email parser
    b"Stray: a\rb\r\n\r\n",  # to the email parser
    b":nameless\r\n\r\n",  # to the email parser
    b"Content-Type: multipart/form-data; boundary=x\r\n\r\n",  # to the email parser
    b"Host: eof-without-blank-line\r\n",
    b"",
]


def _parsed(block: bytes) -> tuple[Any, ...]:
    stream = io.BytesIO(block + b"BODY")
    message = http.client.parse_headers(stream)
    defects = [type(d).__name__ for d in message.defects]
    return message.items(), str(message.get_payload()), defects, stream.read()


def test_headers_parse_to_the_same_message_as_the_email_parser(embedded: EmbeddedAws) -> None:
    fast = [_parsed(block) for block in HEADER_BLOCKS]
    with without("http-headers-fast-parse"):
        slow = [_parsed(block) for block in HEADER_BLOCKS]
    assert fast == slow
    assert fast[1][0][2] == ("x-amz-meta-b", "padded  ")  # compat32 keeps trailing blanks


def test_header_limits_hold(embedded: EmbeddedAws) -> None:
    with pytest.raises(http.client.LineTooLong):
        http.client.parse_headers(io.BytesIO(b"A: " + b"x" * 70000 + b"\r\n\r\n"))
    with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
        http.client.parse_headers(io.BytesIO(b"A: x\r\n" * 101 + b"\r\n"))


@contextmanager
def _count_feed_parsers() -> Iterator[list[int]]:
    real = email.feedparser.FeedParser.__init__
    calls = [0]

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        calls[0] += 1
        real(self, *args, **kwargs)

    email.feedparser.FeedParser.__init__ = counting  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        email.feedparser.FeedParser.__init__ = real  # type: ignore[method-assign]


def test_requests_and_responses_are_parsed_without_the_email_parser(
    probe: dict[str, Any],
) -> None:
    with _count_feed_parsers() as parsers:
        probe["s3"].head_bucket(Bucket="probe-bucket")
    assert parsers[0] == 0


@pytest.mark.canary
def test_canary_http_client_still_parses_headers_with_the_email_parser(
    probe: dict[str, Any],
) -> None:
    with without("http-headers-fast-parse"), _count_feed_parsers() as parsers:
        probe["s3"].head_bucket(Bucket="probe-bucket")
    assert parsers[0] > 0


# --- server-flask-debug (speed) ---------------------------------------------------------------
@contextmanager
def _count_debug_helpers() -> Iterator[list[int]]:
    """Flask's debug-mode helper runs (each builds a class for the request)."""
    from flask import debughelpers

    real = debughelpers.attach_enctype_error_multidict
    calls = [0]

    def counting(request: Any) -> None:
        calls[0] += 1
        real(request)

    debughelpers.attach_enctype_error_multidict = counting
    try:
        yield calls
    finally:
        debughelpers.attach_enctype_error_multidict = real


def test_service_apps_run_out_of_debug_mode_and_still_propagate_errors(
    probe: dict[str, Any],
) -> None:
    from moto.moto_server import threaded_moto_server

    with _count_debug_helpers() as helpers:
        probe["s3"].put_object(Bucket="probe-bucket", Key="debug/one", Body=b"x" * 100)
        probe["s3"].get_object(Bucket="probe-bucket", Key="debug/one")["Body"].read()
    assert helpers[0] == 0
    app = threaded_moto_server.create_backend_app("s3")
    assert app.debug is False
    assert app.config["PROPAGATE_EXCEPTIONS"] is True  # as in debug mode


@pytest.mark.canary
def test_canary_moto_still_runs_its_apps_in_debug_mode() -> None:
    from moto.moto_server import threaded_moto_server

    with without("server-flask-debug"):
        assert threaded_moto_server.create_backend_app("s3").debug is True


# --- server-keep-alive, server-stop-closes-kept-connections -----------------------------------
@contextmanager
def _server() -> Iterator[int]:
    """A moto server of its own (built with the fixes in force now) on a free port."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield port
    finally:
        server.stop()


def _request(
    connection: http.client.HTTPConnection, method: str, path: str, body: bytes = b""
) -> Any:
    headers = {"Host": f"localhost:{connection.port}", "Content-Length": str(len(body))}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    return response


def test_a_connection_serves_request_after_request(embedded: EmbeddedAws) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", embedded.settings.port, timeout=10)
    try:
        # a body nobody reads (moto's health check ignores it), then more requests
        first = _request(connection, "POST", "/moto-api/", body=b"x" * 70_000)
        sock = connection.sock
        second = _request(connection, "GET", "/moto-api/")
        third = _request(connection, "GET", "/moto-api/")
        # THEN the same connection served all three, none told to close
        assert connection.sock is sock is not None
        for response in (first, second, third):
            assert response.getheader("Connection") != "close"
        assert second.status == third.status == 200
    finally:
        connection.close()


def _peer(connection: socket.socket) -> Any:
    try:
        return connection.getpeername()
    except OSError:  # another client's, closing meanwhile
        return None


def test_kept_connections_are_sent_without_delay(embedded: EmbeddedAws) -> None:
    from chute.local.moto_patches.server import _CONNECTIONS_LOCK, _connections

    connection = http.client.HTTPConnection("127.0.0.1", embedded.settings.port, timeout=10)
    try:
        _request(connection, "GET", "/moto-api/")
        local = connection.sock.getsockname()
        with _CONNECTIONS_LOCK:  # other clients' connections come and go meanwhile
            open_now = list(_connections(embedded._server._server))
        kept = [c for c in open_now if _peer(c) == local]
        assert len(kept) == 1
        assert kept[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        connection.close()


def test_a_stopped_server_serves_no_kept_connection() -> None:
    with _server() as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        assert _request(connection, "GET", "/moto-api/").status == 200
    # the server has stopped: the connection it kept is closed, not served on
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        _request(connection, "GET", "/moto-api/")
    connection.close()


@pytest.mark.canary
def test_canary_moto_server_still_closes_every_connection() -> None:
    with without("server-keep-alive"), _server() as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            response = _request(connection, "GET", "/moto-api/")
        finally:
            connection.close()
    assert response.getheader("Connection") == "close"


def test_a_request_whose_body_length_cannot_be_read_is_answered_and_closed(
    embedded: EmbeddedAws,
) -> None:
    with socket.create_connection(("127.0.0.1", embedded.settings.port), timeout=10) as sock:
        sock.sendall(
            b"POST /moto-api/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: ten\r\n\r\nxxxxxxxxxx"
        )
        answer = b""
        while chunk := sock.recv(65536):  # ends: the server closes the connection
            answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    assert head.startswith("HTTP/1.1 ")
    assert "Connection: close" in head
