"""``yiyang devices ...`` and ``yiyang simulate``: wiring only, the work is in ``broker`` and
``simulate``."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from yiyang.db import utcnow
from yiyang.devices.simulate import LOCAL_TZ

console = Console(stderr=True)
devices_app = typer.Typer(help="设备 Devices: registry and broker admission.", no_args_is_help=True)


@devices_app.command("sync-broker")
def sync_broker_command(
    ingest: bool = typer.Option(
        True,
        "--ingest/--no-ingest",
        help="also admit the ingest workers' client (YIYANG_INGEST_USERNAME / PASSWORD)",
    ),
    pending_only: bool = typer.Option(
        False,
        "--pending-only",
        help="only retry the changes queued while the broker was away (a cheap timed job)",
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
    if pending_only:
        try:
            with db.unit_of_work() as session:
                applied, remaining = broker.retry_pending(session, utcnow(), admission)
        finally:
            admission.adapter.close()
            db.dispose()
        typer.echo(json.dumps({"applied": applied, "pending": remaining}))
        raise typer.Exit(1 if remaining else 0)
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


def _parse_start(text: str | None) -> dt.datetime | None:
    if text is None or text == "now":
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("ISO 8601, e.g. 2026-11-28T00:00+08:00, or 'now'") from None
    return value if value.tzinfo else value.replace(tzinfo=LOCAL_TZ)


def simulate_command(
    homes: int = typer.Option(20, min=1, max=100_000, help="simulated homes, one registered elder each"),
    seed: int = typer.Option(7, help="random seed: the same seed gives the same homes, devices and streams"),
    start: str = typer.Option(
        None,
        help="window start, ISO 8601 (local time if no offset) or 'now'; default: now, or the last --hours when replaying",
    ),
    hours: float = typer.Option(24.0, min=0.01, max=24 * 31, help="length of the simulated window"),
    speed: float = typer.Option(
        0.0,
        min=0.0,
        help="simulated seconds per wall second (1 = real time, 60 = an hour a minute); 0 = as fast as possible",
    ),
    via: str = typer.Option(
        "mqtt", help="mqtt: publish to the broker; inprocess: feed the ingest pipeline directly"
    ),
    truth: Path = typer.Option(
        None, help="ground-truth JSON lines (default: <data_dir>/simulate/truth-<seed>-<start>.jsonl)"
    ),
    inject: float = typer.Option(1.0, min=0.0, help="multiply the injected-event rates (0: none)"),
    provision_devices: bool = typer.Option(
        True,
        "--provision/--no-provision",
        help="register and bind the simulated devices through the registry first",
    ),
    host: str = typer.Option(None, help="broker host (default YIYANG_INGEST_BROKER_HOST)"),
    port: int = typer.Option(None, help="broker port (default YIYANG_INGEST_BROKER_PORT)"),
    username: str = typer.Option(
        None, envvar="YIYANG_SIMULATE_USERNAME", help="broker username for the simulator"
    ),
    password: str = typer.Option(
        None, envvar="YIYANG_SIMULATE_PASSWORD", help="broker password for the simulator"
    ),
    max_inflight: int = typer.Option(1000, min=1, max=20_000, help="unacknowledged QoS 1 messages at most"),
    rules: bool = typer.Option(
        True, "--rules/--no-rules", help="in-process: evaluate the alert rules as the ingest worker does"
    ),
) -> None:
    """模拟居家感知 Simulate home sensors for N homes: routines, vital signs, events, injected
    falls/SOS/spikes/inactivity/silence with a ground-truth file (docs/telemetry.md)."""
    from yiyang.config import get_settings
    from yiyang.devices import simulate, simulate_feed
    from yiyang.devices.ingest import IngestSettings, no_rules
    from yiyang.migrate import open_database

    if via not in ("mqtt", "inprocess"):
        raise typer.BadParameter("--via is mqtt or inprocess")
    now = utcnow()
    chosen_start = _parse_start(start)
    length = dt.timedelta(hours=hours)
    if chosen_start is None:
        chosen_start = now - length if speed == 0 else now
    window_end = chosen_start + length
    if via == "mqtt" and chosen_start < now - dt.timedelta(days=7):
        raise typer.BadParameter(
            "over MQTT the ingest accepts data up to 7 days old: start later, or --via inprocess"
        )
    ingest = IngestSettings()
    db = open_database()
    try:
        with db.unit_of_work() as session:
            chosen = simulate_feed.select_homes(session, homes, seed)
        if not chosen:
            console.print(
                "[red]没有登记的居民：请先运行 yiyang demo (no registered residents: run `yiyang demo` first)"
            )
            raise typer.Exit(1)
        scenario = simulate.build_scenario(
            chosen, chosen_start, window_end, seed, rates=simulate.InjectionRates().scaled(inject)
        )
        if provision_devices:
            with db.unit_of_work() as session:
                made = simulate_feed.provision(
                    session, chosen, scenario.devices, chosen_start - dt.timedelta(days=1), now
                )
            console.print(
                f"设备 devices: {made.registered} registered, {made.existing} already there, {made.bound} bound"
                + (f", {len(made.retired)} retired (left out)" if made.retired else "")
            )
        truth_path = truth or (
            Path(get_settings().data_dir) / "simulate" / f"truth-{seed}-{chosen_start:%Y%m%dT%H%M}.jsonl"
        )
        injected = simulate_feed.write_truth(truth_path, scenario)
        console.print(
            f"{len(chosen)} 户 homes, {len(scenario.devices)} 台设备 devices, {injected} injected events -> {truth_path}"
        )
        sink: simulate_feed.Sink
        if via == "mqtt":
            sink = simulate_feed.MqttSink(
                host or ingest.broker_host,
                port or ingest.broker_port,
                ingest.topic_root,
                username=username,
                password=password,
                max_inflight=max_inflight,
            )
        else:
            hook = no_rules
            if rules:
                from yiyang.alerts.engine import make_rules  # wired here, as in `yiyang ingest`

                hook = make_rules()
            sink = simulate_feed.PipelineSink(db, ingest.topic_root, limits=ingest.limits(), rules=hook)
        total = scenario.end - scenario.start
        with Progress(
            TextColumn("[bold]模拟 simulating"),
            BarColumn(),
            TextColumn("{task.fields[messages]:,} messages"),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("simulate", total=total, messages=0)

            def progress(done: float, messages: int) -> None:
                bar.update(task, completed=done, messages=messages)

            stats = simulate_feed.run(
                scenario,
                sink,
                speed=speed,
                not_ahead_of=(lambda: time.time()) if via == "mqtt" else None,
                progress=progress,
            )
    except ConnectionError as error:
        console.print(f"[red]{error}")
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    summary = stats.as_dict() | {"homes": len(chosen), "devices": len(scenario.devices), "injected": injected}
    if isinstance(sink, simulate_feed.PipelineSink):
        outcome = sink.outcome
        summary |= {"stored": outcome.stored + outcome.events, "duplicates": outcome.duplicates}
        summary |= {"quarantined": dict(outcome.quarantined)}
    typer.echo(json.dumps(summary))
