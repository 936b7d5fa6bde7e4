"""serve_in_thread and the CLI registration."""

from __future__ import annotations

import httpx
import pytest
from click.testing import CliRunner

from dispatcher.cli.main import main
from dispatcher.errors import ConfigError
from dispatcher.sandbox import RunningServer, create_bytehand_app, serve_in_thread

from .conftest import HTTP


def test_serves_on_a_free_loopback_port_and_stops() -> None:
    """The server answers on its URL while running, and the port is free afterwards."""
    with serve_in_thread(create_bytehand_app()) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert HTTP.get(server.url + "/_control/stats").status_code == 200
    with pytest.raises(httpx.ConnectError):
        HTTP.get(server.url + "/_control/stats")


def test_binds_only_to_loopback() -> None:
    """Any other interface is a configuration error."""
    with pytest.raises(ConfigError):
        RunningServer(create_bytehand_app(), host="0.0.0.0")


def test_starts_only_once() -> None:
    """A second start is a programming error."""
    with serve_in_thread(create_bytehand_app()) as server, pytest.raises(RuntimeError):
        server.start()


def test_busy_port_is_a_config_error() -> None:
    """Starting on a port in use fails with a clear message."""
    with serve_in_thread(create_bytehand_app()) as server, pytest.raises(ConfigError):
        serve_in_thread(create_bytehand_app(), port=server.port)


def test_cli_command_is_registered() -> None:
    """`dispatcher sandbox --help` lists the documented options."""
    result = CliRunner().invoke(main, ["sandbox", "--help"])
    assert result.exit_code == 0
    for option in (
        "--bytehand-port",
        "--timetochat-port",
        "--callback-url-bytehand",
        "--callback-url-timetochat",
        "--accounts",
        "--fail-rate",
        "--stall-rate",
        "--latency-ms",
    ):
        assert option in result.output
