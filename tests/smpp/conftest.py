"""Fixtures of the SMPP tests: the independent peer, with or without TLS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.conftest import missing_service
from tests.e2e.conftest import stack_factory  # noqa: F401  (the end-to-end test's stacks)
from tests.smpp.peer_process import Peer, install_peer, node_available, running_peer

SYSTEM_ID = "svc-smpp"
PASSWORD = "smpp-secret"
SENDER = "0931000000"

StartPeer = Callable[..., Peer]


@pytest.fixture(scope="session")
def peer_installed() -> None:
    """The peer's npm dependencies, installed from the lock file on first use."""
    reason = node_available()
    if reason:
        missing_service(reason)
    install_peer()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A private CA and a certificate for ``localhost`` signed by it."""
    directory = tmp_path_factory.mktemp("smpp-tls")
    ca = trustme.CA()
    server = ca.issue_cert("localhost")
    paths = {
        "ca": directory / "ca.pem",
        "key": directory / "key.pem",
        "cert": directory / "cert.pem",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.private_key_pem.write_to_path(str(paths["key"]))
    server.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    return paths


@pytest.fixture
def start_peer(peer_installed: None) -> Iterator[StartPeer]:
    """A factory: a running peer with the account's credentials and the given options."""
    with ExitStack() as stack:

        def start(**options: Any) -> Peer:
            base = {"systemId": SYSTEM_ID, "password": PASSWORD, "allowedSources": [SENDER]}
            return stack.enter_context(running_peer(base | options))

        yield start
