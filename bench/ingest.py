"""Ingest benchmark: a million-row recipient file, five cases side by side in one run.

Cases: the bare read (``pandas.read_csv(engine="pyarrow")`` of the CSV, the floor), the
estimate alone (nothing stored), CSV → SQLite, Parquet → SQLite and CSV → PostgreSQL (when
reachable). Each case runs in its own subprocess, so its peak RSS is its own; each prints its
wall seconds, its CPU seconds (user + system, all threads: the figure a loaded machine disturbs
least), rows per second, the ratio to the bare read of the same run (what makes wall figures
from a loaded machine comparable) and its peak RSS; the PostgreSQL case also the CPU seconds
of its server backend (read from ``/proc`` when the server runs on this machine). The load
average is printed beside them.

The databases are migrated by this process before the cases run (a campaign goes into a
database the fleet already migrated); each case still calls ``migrate``, which finds them at
head. Peak RSS is the child's ``VmHWM`` (the high-water mark of its own address space), not
``ru_maxrss``: Linux keeps ``ru_maxrss`` across ``exec``, and a child started by ``subprocess``
(``vfork``) begins with this process's peak, so it would report that whenever it is larger.
Generated files are cached under ``bench/data/``.

    .venv/bin/python bench/ingest.py [--rows N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.procstat import cpu_seconds  # noqa: E402

DATA = ROOT / "bench" / "data"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TEMPLATE = "Bonjour {first_name}, -20% ce week-end dans notre magasin de {city}. STOP au 36180"
FIRST_NAMES = ["Marie", "Jean", "Sophie", "Pierre", "Léa", "Nicolas", "Camille", "Olga", "Иван"]
CITIES = ["Paris", "Lyon", "Marseille", "Lille", "Nantes", "Москва", "Saint-Étienne", "Brest"]


def _number(rnd: random.Random) -> str:
    """A mobile number in one of the shapes real files hold; 1% junk."""
    if rnd.random() < 0.01:
        return rnd.choice(["n/a", "", "12345", "06 12", "+99912345678", "abc"])
    if rnd.random() < 0.7:
        national = rnd.choice(["60", "61", "62", "64", "65", "66", "67", "68", "75", "76", "78"])
        national += f"{rnd.randrange(10**7):07d}"
        shape = rnd.randrange(5)
        if shape == 0:
            return "0" + national
        if shape == 1:
            return "0" + national[0] + " " + " ".join(national[i : i + 2] for i in range(1, 9, 2))
        if shape == 2:
            return "+33" + national
        if shape == 3:
            return "0033" + national
        return "33" + national
    national = f"9{rnd.randrange(10**9):09d}"
    shape = rnd.randrange(3)
    if shape == 0:
        return "+7" + national
    if shape == 1:
        return f"+7 ({national[:3]}) {national[3:6]}-{national[6:8]}-{national[8:]}"
    return "007" + national


def generate(rows: int) -> tuple[Path, Path]:
    """The CSV (``;``, UTF-8) and the same rows as Parquet, cached by row count."""
    DATA.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path = DATA / f"recipients-{rows}.csv", DATA / f"recipients-{rows}.parquet"
    if csv_path.exists() and parquet_path.exists():
        return csv_path, parquet_path
    rnd = random.Random(rows)
    phones: list[str] = []
    for _ in range(rows):
        if phones and rnd.random() < 0.01:
            phones.append(rnd.choice(phones))  # a duplicate, maybe written differently
        else:
            phones.append(_number(rnd))
    frame = pd.DataFrame(
        {
            "phone": phones,
            "first_name": [rnd.choice(FIRST_NAMES) for _ in range(rows)],
            "city": [rnd.choice(CITIES) for _ in range(rows)],
        }
    )
    frame.to_csv(csv_path, sep=";", index=False)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), parquet_path)
    return csv_path, parquet_path


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    """This process's own peak resident set (``VmHWM``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def run_case(case: str, path: Path, url: str) -> None:
    """In the child: one case, timed (wall and CPU, imports excluded); prints its JSON line."""
    valid: int | None = None
    server_cpu: float | None = None
    if case == "bare_read":
        import pandas as pd

        started_work, cpu_before = time.perf_counter(), _cpu()
        pd.read_csv(path, engine="pyarrow", sep=";", dtype=str)
    else:
        from dispatcher.config import load_settings
        from dispatcher.loader import create_campaign, estimate

        settings = load_settings()
        if case == "estimate":
            started_work, cpu_before = time.perf_counter(), _cpu()
            valid = estimate(settings, path, provider="timetochat", template=TEMPLATE).valid
        else:
            from dispatcher.db import make_engine, migrate

            engine = make_engine(url)
            migrate(engine)
            backend = _backend_pid(engine)
            server_before = 0.0 if backend is None else cpu_seconds(backend)
            started_work, cpu_before = time.perf_counter(), _cpu()
            summary = create_campaign(
                engine,
                settings,
                path,
                provider="timetochat",
                sender="0936000000",
                template=TEMPLATE,
            )
            valid = summary.estimate.valid
            if backend is not None and _backend_pid(engine) == backend:
                server_cpu = cpu_seconds(backend) - server_before
    elapsed = time.perf_counter() - started_work
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {
        "seconds": elapsed,
        "cpu_s": usage.ru_utime + usage.ru_stime - cpu_before,
        "valid": valid,
        "peak_rss_mb": _peak_rss_mb(),
    }
    if server_cpu is not None:
        figures["server_cpu_s"] = server_cpu
    print(json.dumps(figures))


def _backend_pid(engine: Any) -> int | None:
    """The PostgreSQL backend of the engine's one pooled connection, when it runs on this
    machine (its CPU is then read from ``/proc``); None on SQLite or a remote server."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        pid = int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    return pid if Path(f"/proc/{pid}/stat").exists() else None


def _postgres_schema() -> tuple[str, str] | None:
    import sqlalchemy

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    except sqlalchemy.exc.OperationalError:
        return None
    finally:
        admin.dispose()
    return schema, f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


def _migrate(url: str) -> None:
    """The database made ready before the case runs, as a campaign goes into a database the
    fleet already uses: the case's own ``migrate`` finds it at head (and loads no Alembic)."""
    from dispatcher.db import make_engine, migrate

    engine = make_engine(url)
    migrate(engine)
    engine.dispose()


def _drop_schema(schema: str) -> None:
    import sqlalchemy

    admin = sqlalchemy.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _child(case: str, path: Path, url: str) -> dict[str, float]:
    child = subprocess.run(
        [sys.executable, __file__, "--case", case, str(path), url],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if child.returncode:
        raise SystemExit(f"case {case} failed:\n{child.stderr}")
    figures: dict[str, float] = json.loads(child.stdout.strip().splitlines()[-1])
    return figures


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--case", nargs=3, metavar=("CASE", "FILE", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        run_case(args.case[0], Path(args.case[1]), args.case[2])
        return
    csv_path, parquet_path = generate(args.rows)
    load_before = _load()
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cases: list[tuple[str, Path, str]] = [
            ("bare_read", csv_path, ""),
            ("estimate", csv_path, ""),
            ("csv_to_sqlite", csv_path, f"sqlite:///{Path(tmp) / 'csv.db'}"),
            ("parquet_to_sqlite", parquet_path, f"sqlite:///{Path(tmp) / 'parquet.db'}"),
        ]
        created = _postgres_schema()
        if created is not None:
            cases.append(("csv_to_postgresql", csv_path, created[1]))
        bare_s = 0.0
        try:
            for _case, _path, url in cases:
                if url:
                    _migrate(url)
            for case, path, url in cases:
                figures = _child(case, path, url)
                seconds = figures["seconds"]
                bare_s = bare_s or seconds
                results.append(
                    {
                        "case": case,
                        "rows": args.rows,
                        "valid": figures["valid"],
                        "seconds": round(seconds, 3),
                        "cpu_s": round(figures["cpu_s"], 3),
                        "rows_per_s": round(args.rows / seconds),
                        "ratio_to_bare_read": round(seconds / bare_s, 1),
                        "peak_rss_mb": round(figures["peak_rss_mb"], 1),
                    }
                )
                if "server_cpu_s" in figures:
                    results[-1]["server_cpu_s"] = round(figures["server_cpu_s"], 3)
        finally:
            if created is not None:
                _drop_schema(created[0])
    report = {
        "load_average_before": load_before,
        "load_average_after": _load(),
        "cpus": os.cpu_count(),
        "cases": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
