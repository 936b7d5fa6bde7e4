"""``dispatcher demo``: two real campaigns end to end on the embedded default.

Embedded Redis and SQLite, both simulators, two worker processes, beat and the web app, all
started and stopped here. A generated 5,000-recipient file (French and Russian numbers in the
shapes CRM exports produce, a few invalid and duplicated) goes to ByteHand in full, and its
first 1,000 rows to TimeToChat (one call per message at 20 calls/s: 5,000 would take four
minutes on their own).
"""

from __future__ import annotations

import contextlib
import csv
import random
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from dispatcher.cli.ops import watch_until_done
from dispatcher.constants import BYTEHAND, TIMETOCHAT
from dispatcher.demo_report import (
    BUDGET_CALLS_PER_S,
    explain_rates,
    report_table,
    state_rows_total,
)
from dispatcher.localstack import TIMETOCHAT_ACCOUNT, LocalStack
from dispatcher.runtime import reset

__all__ = ["generate_recipients", "run_demo"]

FIRST_NAMES = ("Camille", "Léa", "Hugo", "Chloé", "Louis", "Zoé", "Иван", "Ольга", "Jules", "Inès")


def _french(rand: random.Random) -> str:
    # Allocated metropolitan mobile ranges (06 0-8, 07 3-8): others are rightly refused.
    prefix = rand.choice(("6" + str(rand.randrange(9)), "7" + str(rand.randrange(3, 9))))
    digits = f"{prefix}{rand.randrange(10**7):07d}"
    shapes = (
        f"0{digits}",
        f"+33{digits}",
        f"0{digits[0]} {digits[1:3]} {digits[3:5]} {digits[5:7]} {digits[7:]}",
        f"0033{digits}",
        f"33{digits}",
    )
    return rand.choice(shapes)


def _russian(rand: random.Random) -> str:
    digits = f"9{rand.randrange(10**9):09d}"
    return rand.choice(
        # International form: a national "8 (9xx) ..." cannot be read under region FR.
        (f"+7{digits}", f"+7 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}")
    )


def generate_recipients(path: Path, rows: int, *, seed: int = 42) -> Path:
    """A CRM-like export: ``;``-separated, numbers in mixed shapes, ~1% invalid, ~1% repeated."""
    rand = random.Random(seed)
    written: list[str] = []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["phone", "first_name"])
        for _ in range(rows):
            roll = rand.random()
            if roll < 0.01:
                phone = rand.choice(("12345", "not a number", "06 12", "+33 1"))
            elif roll < 0.02 and written:
                phone = rand.choice(written)
            elif roll < 0.8:
                phone = _french(rand)
            else:
                phone = _russian(rand)
            written.append(phone)
            writer.writerow([phone, rand.choice(FIRST_NAMES)])
    return path


def _head(source: Path, target: Path, rows: int) -> Path:
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    target.write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return target


def _console_line(console: Console, stack: LocalStack) -> None:
    """Where to watch the campaigns: the console's URL and the demo's own sign-in token."""
    url = f"http://127.0.0.1:{stack.web_port}/console/"
    console.print(f"[bold]console[/] {url}  sign-in token: {stack.api_token}")


def _keep_up_for_the_console(console: Console, stack: LocalStack) -> None:
    """On a terminal, keep the stack up until Enter or Ctrl-C; otherwise return at once."""
    if not sys.stdin.isatty():
        return
    _console_line(console, stack)
    console.print("the stack stays up: press Enter (or Ctrl-C) to stop it")
    with contextlib.suppress(KeyboardInterrupt, EOFError):
        input()


def run_demo(directory: Path, *, recipients: int = 5000, ttc_recipients: int = 1000) -> bool:
    """Run both campaigns and print their reports; True when every check held."""
    console = Console()
    directory.mkdir(parents=True, exist_ok=True)
    source = generate_recipients(directory / "recipients.csv", recipients)
    subset = _head(source, directory / "recipients-timetochat.csv", ttc_recipients)
    console.print(f"[bold]demo[/] state under {directory}")
    with LocalStack(directory) as stack:
        reset(stack.runtime)
        _console_line(console, stack)
        from dispatcher.loader import create_campaign

        ids: dict[str, int] = {}
        for provider, path, sender in (
            (BYTEHAND, source, "SMSINFO"),
            (TIMETOCHAT, subset, TIMETOCHAT_ACCOUNT.senders[0]),
        ):
            summary = create_campaign(
                stack.runtime.engine,
                stack.settings,
                path,
                provider=provider,
                sender=sender,
                template="Bonjour {first_name}, -20% ce week-end avec le code DEMO !",
                name=f"demo {provider}",
            )
            ids[provider] = summary.id
            console.print(
                f"campaign {summary.id} ({provider}): {summary.estimate.valid} valid of "
                f"{summary.estimate.rows} rows"
            )
        started = time.monotonic()
        for campaign_id in ids.values():
            stack.start_campaign(campaign_id)
        by_id = watch_until_done(list(ids.values()), timeout=280, console=console)
        reports = {provider: by_id[cid] for provider, cid in ids.items()}
        elapsed = time.monotonic() - started
        rates = {BYTEHAND: stack.bytehand.throughput(), TIMETOCHAT: stack.timetochat.throughput()}
    console.print(report_table(reports, rates, f"demo: both campaigns in {elapsed:.0f} s"))
    for provider, rate in rates.items():
        batch = stack.settings.bytehand.batch_size if provider == BYTEHAND else None
        console.print(explain_rates(provider, rate, batch))
    ok = True
    for provider, report in reports.items():
        rate = rates[provider]
        ok &= report["state"] == "completed" and state_rows_total(report) == sum(
            report["counts"].values()
        )
        ok &= rate["rejections"] == 0 and rate["duplicates"] == 0
        ok &= int(rate["max_calls_in_1s"]) <= BUDGET_CALLS_PER_S
        console.print(f"[bold]{provider}[/] reasons:")
        for reason, count in report["reasons"].items():
            console.print(f"    {count:>6}  {escape(reason)}")  # provider text, not markup
        _keep_up_for_the_console(console, stack)
    console.print("[green]demo passed[/]" if ok else "[red]demo found a problem[/]")
    return ok
