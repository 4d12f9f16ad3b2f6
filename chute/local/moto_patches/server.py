"""moto's HTTP server: every request to the endpoint passes chute.local.faults first (injected S3
errors, signals to workers), and finds its service without scanning moto's package each time
(moto lists its folder and matches ~150 URL patterns under one global lock per request);
clients keep their connections (HTTP/1.1 keep-alive) instead of one per request; the service
apps run out of Flask's debug mode (which builds a class per request); headers of the usual
form are parsed without the email package's feed parser.
"""

from __future__ import annotations

import contextlib
import email.parser
import http.client
import re
import socket
import threading
import traceback
from typing import Any

from moto.moto_server import threaded_moto_server
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler
from werkzeug.wsgi import LimitedStream

from chute.local.moto_patches.seam import HOOKS, Fixes, Kind

FIXES = Fixes()


@FIXES.declare(
    "request-filter",
    Kind.HOOK,
    DomainDispatcherApplication,
    "__call__",
    why="moto's server has no middleware hook; injected faults answer before it",
)
def _request_filter(original: Any) -> Any:
    def __call__(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        answer = HOOKS.request_filter(environ) if HOOKS.request_filter else None
        if answer is None:
            return original(self, environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    return __call__


_MAX_LINE: int = http.client._MAXLINE  # type: ignore[attr-defined]
_MAX_HEADERS: int = http.client._MAXHEADERS  # type: ignore[attr-defined]
_HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+:")
"""What the email package's parser takes for a header's name and colon (any other line ends
the headers or continues one: left to it)."""


@FIXES.declare(
    "http-headers-fast-parse",
    Kind.SPEED,
    http.client,
    "parse_headers",
    why="the standard library parses every request's and response's headers with the email "
    "package's feed parser (23.6 µs for a botocore request's headers; 7.2 µs here)",
)
def _fast_parse_headers(original: Any) -> Any:
    """The same message the email parser builds (compat32: the name as written, the value
    after the colon with leading blanks dropped) for headers of the usual form, read with the
    same limits; anything else (a folded line, one without a colon, a stray CR, a multipart
    or message content type) goes to the email parser as before."""

    def parse_headers(fp: Any, _class: Any = http.client.HTTPMessage) -> Any:
        lines: list[bytes] = []
        while True:
            line = fp.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                raise http.client.LineTooLong("header line")
            lines.append(line)
            if len(lines) > _MAX_HEADERS:
                raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
            if line in (b"\r\n", b"\n", b""):
                break
        message = _class()
        for raw in lines:
            if raw in (b"\r\n", b"\n", b""):
                break
            text = raw.decode("iso-8859-1").removesuffix("\n").removesuffix("\r")
            found = _HEADER_NAME.match(text)
            if found is None or "\r" in text:
                return _slow(lines, _class)
            name, value = text[: found.end() - 1], text[found.end() :].lstrip(" \t")
            if name.lower() == "content-type" and value.lower().startswith(
                ("multipart/", "message/")
            ):
                return _slow(lines, _class)
            message.set_raw(name, value)
        message.set_payload("")
        return message

    def _slow(lines: list[bytes], _class: Any) -> Any:
        text = b"".join(lines).decode("iso-8859-1")
        return email.parser.Parser(_class=_class).parsestr(text)

    return parse_headers


@FIXES.declare(
    "server-flask-debug",
    Kind.SPEED,
    threaded_moto_server,
    "create_backend_app",
    why="moto runs its Flask apps in debug mode: Flask then builds a class per request",
)
def _no_flask_debug(original: Any) -> Any:
    """Each service's app out of debug mode (Flask's debug helper subclasses the request's
    ``files`` for every request: ~10 % of the endpoint's time in a profile), its exceptions
    still propagating to the server as in debug mode."""

    def create_backend_app(service: Any) -> Any:
        app = original(service)
        app.debug = False
        app.config["PROPAGATE_EXCEPTIONS"] = True
        return app

    return create_backend_app


@FIXES.declare(
    "server-dispatch-cache",
    Kind.SPEED,
    DomainDispatcherApplication,
    "get_backend_for_host",
    why="every request lists moto's folder and matches every URL pattern under one lock",
)
def _dispatch_cache(original: Any) -> Any:
    def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
        cache: dict[str | None, Any] = self.__dict__.setdefault("_chute_backend_of_host", {})
        if host in cache:
            return cache[host]
        backend = original(self, host)
        cache[host] = backend
        return backend

    return get_backend_for_host


# --- keep-alive connections -------------------------------------------------------------------
IDLE_CONNECTION_SECONDS = 60.0
"""A kept connection with no request for this long is closed (clients open a new one)."""


class KeepAliveRequestHandler(MotoRequestHandler):
    """moto's request handler, serving every HTTP/1.1 request on a connection the client keeps.

    werkzeug's development server closes every connection after one response, because it can't
    tell where an unread request body ends; so every request to the endpoint cost a TCP
    connection, a thread started for it, and a 10 ms wait for the client's close — about 30
    requests per file, from the workers' and the interpreter's clients (docs/decisions.md,
    2026-12-07). Here the request body is read up to its Content-Length whatever the
    application read, the response is framed (Content-Length, or chunked), and the connection
    serves the next request; a chunked request body, a response cut short by an error, an
    HTTP/1.0 client or ``Connection: close`` still close it."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_SECONDS

    def setup(self) -> None:
        super().setup()
        # each response leaves as it is written: with Nagle's algorithm on a kept connection,
        # a response (or the 100 Continue an upload waits for) waited for the client's
        # delayed ACK of the previous one, up to 40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with _CONNECTIONS_LOCK:
            _connections(self.server).add(self.connection)

    def finish(self) -> None:
        with _CONNECTIONS_LOCK:
            _connections(self.server).discard(self.connection)
        super().finish()

    def log_error(self, format: str, *args: Any) -> None:
        if format.startswith("Request timed out"):
            return  # a kept connection idle for IDLE_CONNECTION_SECONDS: closed, as meant
        super().log_error(format, *args)

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        body: LimitedStream | None = None
        if "wsgi.input_terminated" in environ:  # chunked: its end is only known once read
            self.close_connection = True
        elif not (length := environ.get("CONTENT_LENGTH") or "0").isdigit():
            self.close_connection = True  # no telling where the body ends: not kept
        else:
            body = LimitedStream(self.rfile, int(length))  # type: ignore[arg-type]
            environ["wsgi.input"] = body
        response = _Response(self, environ["REQUEST_METHOD"])
        try:
            result = self.server.app(environ, response.start)
            try:
                for data in result:
                    response.write(data)
                response.end()
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except (ConnectionError, TimeoutError) as exc:
            self.close_connection = True
            self.connection_dropped(exc, environ)
            return
        except Exception:
            self.close_connection = True  # a response cut short ends with the connection
            if not response.sent:
                response.fail()
            self.server.log("error", "Error on request:\n%s", traceback.format_exc())
            return
        if body is not None and not self.close_connection:
            body.exhaust()  # what the application left unread: the next request line follows


class _Response:
    """One response of :class:`KeepAliveRequestHandler`: WSGI's start_response and write."""

    def __init__(self, handler: KeepAliveRequestHandler, method: str) -> None:
        self.handler = handler
        self.method = method
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.sent = False
        self.chunked = False

    def start(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info is not None and self.sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status, self.headers = status, headers
        return self.write

    def _send_head(self) -> None:
        assert self.status is not None, "write() before start_response"
        code_text, _, reason = self.status.partition(" ")
        code = int(code_text)
        handler = self.handler
        handler.send_response(code, reason)
        names = set()
        for name, value in self.headers:
            handler.send_header(name, value)
            names.add(name.lower())
        bodiless = self.method == "HEAD" or code < 200 or code in (204, 304)
        if "content-length" not in names and not bodiless:
            self.chunked = True
            handler.send_header("Transfer-Encoding", "chunked")
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        self.sent = True

    def write(self, data: bytes) -> None:
        if not self.sent:
            self._send_head()
        if data:
            wfile = self.handler.wfile
            if self.chunked:
                wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
            else:
                wfile.write(data)

    def end(self) -> None:
        if not self.sent:
            self._send_head()
        if self.chunked:
            self.handler.wfile.write(b"0\r\n\r\n")
        self.handler.wfile.flush()

    def fail(self) -> None:
        """The application raised before its response began: a 500, and the connection
        closes."""
        self.status, self.headers = "500 Internal Server Error", [("Content-Length", "0")]
        self.end()


_CONNECTIONS_LOCK = threading.Lock()


def _connections(server: Any) -> set[socket.socket]:
    found: set[socket.socket] = server.__dict__.setdefault("_chute_connections", set())
    return found


@FIXES.declare(
    "server-keep-alive",
    Kind.SPEED,
    threaded_moto_server,
    "MotoRequestHandler",
    why="every request costs a TCP connection, a thread and a 10 ms wait for the client's close",
)
def _keep_alive(original: Any) -> Any:
    return KeepAliveRequestHandler


@FIXES.declare(
    "server-stop-closes-kept-connections",
    Kind.HOOK,
    ThreadedMotoServer,
    "stop",
    why="a stopped server's kept connections would go on serving requests",
)
def _stop_closes_connections(original: Any) -> Any:
    def stop(self: ThreadedMotoServer) -> None:
        server = self._server
        original(self)
        if server is None:
            return
        with _CONNECTIONS_LOCK:
            kept = list(_connections(server))
        for connection in kept:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    return stop
