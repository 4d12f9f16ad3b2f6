"""The console's HTTP server: stdlib ``ThreadingHTTPServer``, pages rendered with Jinja2
(autoescape on: every key, value and message is escaped), htmx for the live parts.

Security: it listens on loopback unless told otherwise; requests must name this server in
``Host`` (no DNS rebinding); a POST needs the session cookie, that session's CSRF token in the
``X-CSRF-Token`` header and an ``Origin`` equal to the console's own; pages carry a strict
Content-Security-Policy (scripts only from /static, no inline script). The page never receives
credentials: downloads and uploads use presigned URLs for one object each.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import mimetypes
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from jinja2 import Environment, PackageLoader, select_autoescape

from chute.ops import operate
from chute.ops.deployment import Deployment
from chute.web import graph
from chute.web.model import STATUSES, ConsoleData, ConsoleError, Filters

DEFAULT_CONSOLE_PORT = 4570
COOKIE = "chute_console"
TOKEN_HEADER = "X-CSRF-Token"
PER_PAGE = 50
MAX_BODY = 64 * 1024
MAX_SESSIONS = 1000
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Forbidden(Exception):
    """A request refused by the cross-site or host checks."""


def _size(n: int | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}s" if value >= 0.1 else f"{value * 1000:.0f}ms"


def _event_summary(event: dict[str, Any]) -> str:
    """One history event in a line: the state it concerns, or the error and its cause."""
    for name, details in event.items():
        if not name.endswith("EventDetails") or not isinstance(details, dict):
            continue
        if "name" in details:
            return str(details["name"])
        if "error" in details or "cause" in details:
            cause = str(details.get("cause") or "")
            return f"{details.get('error') or ''} {cause[:300]}{'…' if len(cause) > 300 else ''}"
        if "resource" in details:
            return f"{details.get('resourceType', '')}:{details['resource']}"
    return ""


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("chute.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(size=_size, time=_time, seconds=_seconds)
    env.globals.update(
        statuses=STATUSES, urlencode=urlencode, pretty=graph.pretty, event_summary=_event_summary
    )
    return env


@dataclass
class Page:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


class Console:
    """The application: requests in, pages out (no sockets here; ConsoleServer serves it)."""

    def __init__(self, deployment: Deployment, *, allowed_hosts: tuple[str, ...]) -> None:
        self.data = ConsoleData(deployment)
        self.d = deployment
        self.env = environment()
        self.allowed_hosts = allowed_hosts
        self._secret = secrets.token_bytes(32)

    # --- sessions and cross-site checks --------------------------------------------------
    def token_for(self, session: str) -> str:
        return hmac.new(self._secret, session.encode(), hashlib.sha256).hexdigest()

    def check_host(self, host: str | None) -> None:
        if host not in self.allowed_hosts:
            raise Forbidden(f"unexpected Host {host!r}")

    def check_post(self, headers: Any, session: str | None) -> None:
        origin = headers.get("Origin")
        if origin is None or origin != f"http://{headers.get('Host')}":
            raise Forbidden("cross-site request refused (Origin)")
        token = headers.get(TOKEN_HEADER) or ""
        if not session or not hmac.compare_digest(token, self.token_for(session)):
            raise Forbidden("missing or wrong CSRF token: reload the page")

    # --- rendering ----------------------------------------------------------------------
    def render(self, template: str, status: int = 200, **values: Any) -> Page:
        html = self.env.get_template(template).render(d=self.d, **values)
        return Page(status, html.encode("utf-8"))

    def connect_sources(self) -> str:
        """Where the page may send uploads: the S3 endpoint presigned URLs point to."""
        if self.d.endpoint_url:
            parts = urlsplit(self.d.endpoint_url)
            return f"{parts.scheme}://{parts.netloc}"
        return "https://*.amazonaws.com"

    # --- GET ------------------------------------------------------------------------------
    def get(self, path: str, query: dict[str, str], token: str) -> Page:
        if path == "/":
            filters, page = self._filters(query)
            return self.render("index.html", token=token, filters=filters, query=query, page=page)
        if path == "/fragments/list":
            filters, page = self._filters(query)
            listing = self.data.listing(filters, page=page, per_page=PER_PAGE)
            return self.render("_list.html", listing=listing, query=query)
        if path == "/execution":
            arn = self.data.resolve(query.get("id", ""))
            return self.render(
                "execution.html", token=token, detail=self.data.detail(arn), query=query
            )
        if path == "/fragments/execution":
            arn = self.data.resolve(query.get("id", ""))
            return self.render("_execution.html", detail=self.data.detail(arn))
        if path == "/glance":
            return self.render("glance.html", token=token, glance=self.data.glance())
        if path == "/healthz":
            return Page(200, b"ok", "text/plain")
        raise LookupError(path)

    def _filters(self, query: dict[str, str]) -> tuple[Filters, int]:
        status = query.get("status") or None
        if status and status not in STATUSES:
            raise ConsoleError(f"unknown status {status!r}")
        try:
            since = operate.parse_since(query.get("since") or None)
        except operate.OperateError as exc:
            raise ConsoleError(str(exc).replace("--since", "since")) from exc
        try:
            page = max(1, int(query.get("page") or 1))
        except ValueError as exc:
            raise ConsoleError("page must be a number") from exc
        return Filters(status=status, key_prefix=query.get("prefix") or None, since=since), page

    # --- POST -----------------------------------------------------------------------------
    def post(self, path: str, form: dict[str, str], body: bytes) -> Page:
        if path == "/actions/rerun":
            arn = self.data.resolve(form.get("id", ""))
            result = self.data.rerun(arn, force=form.get("force") == "1")
            return self.render("_result.html", action="rerun", rerun=result)
        if path == "/actions/requeue":
            key = form.get("key", "")
            moved = self.data.requeue(key)
            return self.render("_result.html", action="requeue", moved=moved, key=key)
        if path == "/api/grant":
            request = _json_object(body)
            size = request.get("size")
            grant = self.data.upload_grant(
                str(request.get("name") or ""),
                size if isinstance(size, int) and not isinstance(size, bool) else None,
                request.get("contentType") if isinstance(request.get("contentType"), str) else None,
            )
            keep: tuple[str, ...] = ("kind", "key", "bucket", "method", "url", "headers")
            keep += ("expiresIn", "uploadId", "partSize", "parts")
            document = {k: grant[k] for k in keep if k in grant}
            return Page(200, json.dumps(document).encode(), "application/json")
        if path == "/api/complete":
            request = _json_object(body)
            done = self.data.complete(str(request.get("key") or ""), str(request.get("uploadId")))
            return Page(200, json.dumps(done).encode(), "application/json")
        raise LookupError(path)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: `chute up` prints its own lines

    def _session(self) -> str | None:
        cookie = SimpleCookie(self.headers.get("Cookie") or "")
        morsel = cookie.get(COOKIE)
        value = morsel.value if morsel else None
        return value if value and value in self.server.sessions else None

    def _send(self, page: Page, session_cookie: str | None = None) -> None:
        self.send_response(page.status)
        self.send_header("Content-Type", page.content_type)
        self.send_header("Content-Length", str(len(page.body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' {self.server.app.connect_sources()}; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'self'",
        )
        if session_cookie:
            self.send_header(
                "Set-Cookie", f"{COOKIE}={session_cookie}; Path=/; HttpOnly; SameSite=Strict"
            )
        for name, value in page.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(page.body)

    def _error(self, status: int, message: str) -> Page:
        if self.path.startswith("/api/"):
            return Page(status, json.dumps({"error": message}).encode(), "application/json")
        if self.headers.get("HX-Request"):  # a fragment for htmx to show in place
            return self.server.app.render("_result.html", status=status, error=message)
        try:
            app = self.server.app
            return app.render("error.html", status=status, code=int(status), message=message)
        except Exception:  # the error page itself must not fail the request
            return Page(status, message.encode(), "text/plain; charset=utf-8")

    def _guarded(self, action: Any) -> Page:
        app = self.server.app
        try:
            app.check_host(self.headers.get("Host"))
            result: Page = action()
            return result
        except Forbidden as exc:
            return self._error(HTTPStatus.FORBIDDEN, str(exc))
        except LookupError:
            return self._error(HTTPStatus.NOT_FOUND, f"no page {self.path!r}")
        except ConsoleError as exc:
            return self._error(HTTPStatus.BAD_REQUEST, str(exc))
        except operate.OperateError as exc:
            return self._error(HTTPStatus.BAD_REQUEST, str(exc))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            return self._error(
                HTTPStatus.BAD_GATEWAY, f"AWS said {error.get('Code')}: {error.get('Message')}"
            )
        except BotoCoreError as exc:
            return self._error(HTTPStatus.BAD_GATEWAY, f"cannot reach the deployment: {exc}")

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        session = self._session()
        new_session = None
        if session is None:
            session = new_session = secrets.token_urlsafe(24)
            with self.server.lock:
                sessions = self.server.sessions
                sessions[session] = None
                while len(sessions) > MAX_SESSIONS:  # the oldest go first
                    del sessions[next(iter(sessions))]
        if parts.path.startswith("/static/"):
            self._send(self._guarded(lambda: _static(parts.path.removeprefix("/static/"))))
            return
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        token = self.server.app.token_for(session)
        page = self._guarded(lambda: self.server.app.get(parts.path, query, token))
        self._send(page, new_session)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._send(self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request too large"))
            return
        body = self.rfile.read(length) if length else b""
        session = self._session()

        def act() -> Page:
            self.server.app.check_post(self.headers, session)
            form: dict[str, str] = {}
            if "form" in (self.headers.get("Content-Type") or ""):
                form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
            return self.server.app.post(parts.path, form, body)

        self._send(self._guarded(act))


def _static(name: str) -> Page:
    if "/" in name or name.startswith("."):
        raise LookupError(name)
    resource = resources.files("chute.web").joinpath("static", name)
    if not resource.is_file():
        raise LookupError(name)
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind.endswith("javascript"):
        kind += "; charset=utf-8"
    return Page(200, resource.read_bytes(), kind, (("Cache-Control", "max-age=300"),))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: Console
    sessions: dict[str, None]  # insertion-ordered: the oldest first
    lock: threading.Lock


class ConsoleServer:
    """Serves :class:`Console` for one deployment on ``host:port`` (0: any free port)."""

    def __init__(self, deployment: Deployment, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), _Handler)
        self.host = host
        self.port = int(self._server.server_address[1])
        names = {host, *(LOOPBACK if host in LOOPBACK else ())}
        hosts = tuple(f"{n}:{self.port}" if ":" not in n else f"[{n}]:{self.port}" for n in names)
        self._server.app = Console(deployment, allowed_hosts=hosts)
        self._server.sessions = {}
        self._server.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}/"

    @property
    def app(self) -> Console:
        return self._server.app

    def start(self) -> ConsoleServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="chute-console", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ConsoleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _json_object(body: bytes | None) -> dict[str, Any]:
    """A request body that must be a JSON object (ConsoleError: a 400 saying so)."""
    try:
        request = json.loads(body or b"{}")
    except ValueError as exc:
        raise ConsoleError("the body must be JSON") from exc
    if not isinstance(request, dict):
        raise ConsoleError("the body must be a JSON object")
    return request
