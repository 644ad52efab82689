"""``yiyang devices ...`` and ``yiyang simulate``: wiring only, the work is in ``broker`` and
``simulate``."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from yiyang.db import utcnow

console = Console(stderr=True)
devices_app = typer.Typer(help="设备 Devices: registry and broker admission.", no_args_is_help=True)


@devices_app.command("sync-broker")
def sync_broker_command(
    ingest: bool = typer.Option(
        True,
        "--ingest/--no-ingest",
        help="also admit the ingest workers' client (YIYANG_INGEST_USERNAME / PASSWORD)",
    ),
) -> None:
    """接入同步 Reconcile the MQTT broker with the device registry: admit active devices, remove
    retired and unknown ones, deliver queued secrets (docs/telemetry.md)."""
    from yiyang.devices import broker
    from yiyang.devices.ingest import IngestSettings
    from yiyang.migrate import open_database

    admission = broker.current_admission()
    if not admission.active:
        console.print(
            "YIYANG_BROKER_ADMISSION=none: 代理不做接入控制，无需同步 (the broker is not managed; nothing to do)"
        )
        raise typer.Exit(0)
    ingest_settings = IngestSettings()
    ingest_account = None
    if ingest and ingest_settings.username:
        ingest_account = (ingest_settings.username, ingest_settings.password, ingest_settings.share_group)
    db = open_database()
    try:
        with (
            Progress(
                TextColumn("[bold]同步设备 syncing devices"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as bar,
            db.unit_of_work() as session,
        ):
            task = bar.add_task("devices", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = broker.sync_broker(
                session, utcnow(), admission, ingest=ingest_account, progress=progress
            )
    except broker.BrokerUnavailable as error:
        console.print(f"[red]代理不可用 (broker unavailable): {error}")
        raise typer.Exit(1) from None
    finally:
        admission.adapter.close()
        db.dispose()
    if report.secret_unknown:
        console.print(
            f"[yellow]{len(report.secret_unknown)} 台设备在代理上缺失且密钥未知，请轮换密钥 "
            "(devices missing on the broker whose secret is unknown: rotate their secrets, "
            "POST /api/devices/{id}/secret)"
        )
    for uid, error in list(report.failed.items())[:20]:
        console.print(f"[red]{uid}: {error}")
    typer.echo(json.dumps(report.as_dict()))
    if report.failed:
        raise typer.Exit(1)
