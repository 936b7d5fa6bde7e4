"""A PostgreSQL for the tests on a machine that runs none: pgserver's binaries (a wheel from
PyPI) on a free loopback port, so a fresh machine runs the PostgreSQL tests too."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

with warnings.catch_warnings():  # it looks up a per-user runtime directory it does not need here
    warnings.simplefilter("ignore")
    import pgserver
    from pgserver.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

from dispatcher.embedded import free_port

__all__ = ["local_postgres"]

_SYSTEM_USER = "pgserver"  # PostgreSQL refuses to run as root


@contextmanager
def local_postgres(directory: Path) -> Iterator[str]:
    """Start a throw-away server; yields its URL (database ``postgres``, trust auth).

    As root the server runs as a system user, which must reach its data directory: that one
    is then made outside ``directory``, because pytest keeps its temporary root closed to
    other users and every pytest-xdist worker closes it again when it starts.
    """
    user = _SYSTEM_USER if os.geteuid() == 0 else None
    if user is None:
        pgdata = directory / "pgdata"
        pgdata.mkdir(parents=True)
    else:
        pgdata = Path(tempfile.mkdtemp(prefix="dispatcher-test-pgdata-"))
        ensure_user_exists(user)
        binaries = Path(pgserver.__file__).parent / "pginstall" / "bin"
        ensure_prefix_permissions(pgdata)
        ensure_prefix_permissions(binaries)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(binaries, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(binaries.parent / "lib", readable)
        entry = pwd.getpwnam(user)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    pgserver.initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=pgdata, user=user)
    port = free_port()
    options = f"-h 127.0.0.1 -p {port} -c unix_socket_directories=''"
    log = pgdata / "server.log"
    pgserver.pg_ctl(
        ["-w", "-o", options, "-l", str(log), "start"], pgdata=pgdata, user=user, timeout=60
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        pgserver.pg_ctl(["-m", "immediate", "-w", "stop"], pgdata=pgdata, user=user, timeout=60)
        if user is not None:
            shutil.rmtree(pgdata, ignore_errors=True)
