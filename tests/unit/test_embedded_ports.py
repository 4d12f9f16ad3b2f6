"""The embedded runtime's ports (issue 12 item 1): port 0 picks a free port, and a port whose
last server just stopped (connections in TIME_WAIT) counts as free, as the server's own bind
(SO_REUSEADDR) sees it."""

from __future__ import annotations

import socket

import pytest

from chute.local.embedded import EmbeddedAws, LocalSettings, PortInUse, check_port_free


def test_port_zero_picks_a_free_port_for_the_endpoint_and_the_grant_api() -> None:
    # GIVEN settings asking for port 0 WHEN the runtime is created
    runtime = EmbeddedAws(LocalSettings(port=0, grant_port=0, persist=False))
    # THEN real ports are chosen and the endpoint URL names one
    assert runtime.settings.port > 0 and runtime.settings.grant_port
    assert runtime.endpoint_url == f"http://127.0.0.1:{runtime.settings.port}"
    check_port_free("127.0.0.1", runtime.settings.port)


def test_a_port_left_in_time_wait_by_the_last_run_is_free() -> None:
    # GIVEN a server that served one connection and closed first (its port is in TIME_WAIT)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()
    server.close()
    client.close()
    # WHEN the next run checks the port THEN it is free
    check_port_free("127.0.0.1", port)


def test_a_port_someone_listens_on_is_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(PortInUse, match="already in use"):
            check_port_free("127.0.0.1", busy.getsockname()[1])
