"""``yiyang demo``: a synthetic district, imported through the real pipeline, served at once."""

from __future__ import annotations

import csv
import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from sqlalchemy import select
from sqlalchemy.orm import Session

from yiyang.config import get_settings
from yiyang.geo.models import Area
from yiyang.residents.models import Resident
from yiyang.sources.models import Feed, ImportRun, RunStatus

if TYPE_CHECKING:
    from yiyang.demo.synthetic import DistrictFiles

console = Console(stderr=True)
# The pages that show the loop, for the demo user (family doctor and lead of the team, health
# officer over the district, administrator).
PAGES = ("/alerts", "/inbox", "/care/my-work", "/care/overdue", "/tiers", "/residents")


def demo_command(
    residents: int = typer.Option(20_000, min=100, max=400_000, help="elders in the synthetic district"),
    seed: int = typer.Option(7, help="random seed: the same seed builds the same district"),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="serve the web app when built"),
    port: int = typer.Option(None, help="port to serve on (default YIYANG_PORT, else 8000)"),
    homes: int = typer.Option(
        40, min=0, max=5_000, help="homes sensed for the last 24 hours in the care loop (0: skip step 4)"
    ),
    inject: float = typer.Option(
        10.0, min=0.0, max=1_000.0, help="multiply the everyday rates of injected falls, SOS, spikes ..."
    ),
) -> None:
    """演示街区 Build a synthetic district, write the three agencies' files, import them, run a day of the
    care loop (contracts, home sensing, alerts, care work), serve the staff web."""
    from yiyang.demo.synthetic import generate_district
    from yiyang.geo.service import import_geography, import_organisations
    from yiyang.migrate import open_database as database
    from yiyang.sources.commands import run_import

    settings = get_settings()
    steps = 4 if homes > 0 else 3
    out_dir = Path(settings.data_dir) / "demo" / f"district-{residents}-{seed}"
    console.print(
        f"[bold]1/{steps}[/] 生成合成辖区 generating a district of {residents:,} elders -> {out_dir}"
    )
    files = generate_district(out_dir, residents, seed=seed, progress=True)

    db = database()
    with db.unit_of_work() as session:
        foreign = other_data(session, files)
    if foreign is not None:
        db.dispose()
        console.print(
            f"[red]demo.database.not_empty: 数据库中已有演示以外的数据，演示不写入 (the database holds data "
            f"this demo did not put there; the demo writes nothing): {foreign}\n"
            f"请把 YIYANG_DATA_DIR 设为空目录并不设 YIYANG_DATABASE_URL (use an empty YIYANG_DATA_DIR and "
            f"leave YIYANG_DATABASE_URL unset), 或用同样的 --residents 与 --seed 重跑 (or the same "
            f"--residents and --seed as before)"
        )
        raise typer.Exit(2)
    console.print(f"[bold]2/{steps}[/] 导入辖区与机构 importing geography and organisations")
    with db.unit_of_work() as session:
        import_geography(session, files.geography)
        import_organisations(session, files.organisations)
    db.dispose()

    console.print(
        f"[bold]3/{steps}[/] 导入卫健、医保、民政数据 importing health, insurance and civil-affairs files"
    )
    for feed, path in (
        (Feed.health, files.health),
        (Feed.insurance, files.insurance),
        (Feed.civil, files.civil),
    ):
        run_import(feed, Path(path), report=None)

    password = _demo_sign_in()
    if homes > 0:
        console.print(
            "[bold]4/4[/] 医养闭环 the care loop: contracts, a day of home sensing, alerts, care work"
        )
        _care_loop(homes=homes, seed=seed, inject=inject)
    if password:
        console.print(f"[bold]登录 sign in[/]: demo / {password}")
    host, shown_port = settings.host, port or settings.port
    console.print(
        ("打开 open: " if serve else "运行 yiyang serve 后打开 after `yiyang serve`, open: ")
        + "  ".join(f"http://{host}:{shown_port}{page}" for page in PAGES)
    )
    if serve:
        from yiyang.cli import serve as serve_command

        serve_command(host=host, port=shown_port)


def other_data(session: Session, files: DistrictFiles) -> str | None:
    """What in the database the demo did not put there, or None. The demo writes only into an empty
    database or one holding this same district (the demo run again): its synthetic people would
    otherwise be linked to real residents' records (or another demo's) and change their facts."""
    ours = {_sha256(path) for path in files.feeds.values()}
    runs = session.execute(
        select(ImportRun.filename, ImportRun.file_sha256).where(ImportRun.status == RunStatus.applied)
    ).all()
    foreign_runs = sorted({filename for filename, sha256 in runs if sha256 not in ours})
    if foreign_runs:
        return f"imports of other files ({', '.join(foreign_runs[:5])})"
    with files.geography.open(encoding="utf-8", newline="") as handle:
        demo_areas = {row["编码"] for row in csv.DictReader(handle)}
    other_areas = sorted(set(session.scalars(select(Area.code))) - demo_areas)
    if other_areas:
        return f"areas of another district ({', '.join(other_areas[:5])})"
    if not runs and session.scalar(select(Resident.id).limit(1)) is not None:
        return "residents not imported from the demo's files"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _demo_sign_in() -> str | None:
    """A demo account: health officer over the district and administrator; returns its password
    when it was created now (to be shown once), else None."""
    import secrets

    from sqlalchemy import select

    from yiyang.access import service as access
    from yiyang.access.roles import Role
    from yiyang.geo.models import Area, AreaLevel
    from yiyang.migrate import open_database

    db = open_database()
    with db.unit_of_work() as session:
        district = session.execute(select(Area).where(Area.level == AreaLevel.district)).scalars().first()
        if district is None or access.find_user(session, "demo") is not None:
            db.dispose()
            return None
        password = secrets.token_urlsafe(9)
        user = access.create_user(session, "demo", password=password, display_name="演示 demo")
        access.grant_role(session, user, Role.health_officer, area_id=district.id)
        access.grant_role(session, user, Role.district_admin)
    db.dispose()
    return password


def _care_loop(*, homes: int, seed: int, inject: float) -> None:
    """Step 4: a team and its contracts, a day of sensing in its homes, the timed jobs, a summary."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from yiyang.db import utcnow
    from yiyang.demo import loop
    from yiyang.migrate import open_database

    now = utcnow()
    started = time.perf_counter()
    db = open_database()  # installs the reactions: an alert becomes a home visit
    try:
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console,
        ) as bar:  # fmt: skip
            signing = bar.add_task("签约 contracts", total=None)
            team = loop.set_up_team(
                db, now=now, progress=lambda done, total: bar.update(signing, completed=done, total=total)
            )
            if team is None:
                console.print(
                    "[yellow]没有卫生服务中心或居民：跳过 no health centre or residents: step 4 skipped"
                )
                return
            sensing_task = bar.add_task("感知 sensing 24 h (s)", total=None)
            sensing = loop.sense_a_day(
                db, team.resident_ids, homes=homes, seed=seed, inject=inject, now=now,
                prefer=team.grid_resident_ids, progress=lambda done, total: bar.update(sensing_task, completed=done, total=total),
            )  # fmt: skip
            days_task = bar.add_task("照护日 care days", total=None)
            jobs = loop.run_jobs(
                db, first_day=team.first_day, now=now,
                progress=lambda done, total: bar.update(days_task, completed=done, total=total),
            )  # fmt: skip
        summary = loop.summarise(db, team.team_id, now)
    finally:
        db.dispose()
    _print_summary(team, sensing, jobs, summary)
    console.print(f"医养闭环 care loop: {time.perf_counter() - started:.1f} s")


def _print_summary(team, sensing, jobs, summary) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    from yiyang.demo.loop import GRID_WORKER

    table = Table(title=f"{team.team_name} · {team.community_name}", title_justify="left", show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    rows: list[tuple[str, object]] = [
        ("签约 contracts in force", f"{summary.contracts:,} ({team.signed:,} new)"),
        ("签约关系 relationship rows", f"{summary.relationships:,}"),
        ("感知家庭 homes sensed, last 24 h", sensing.homes),
        ("设备 devices", sensing.devices),
        ("消息 messages", f"{sensing.messages:,}"),
        ("注入事件 injected events", sensing.injected),
    ]
    rows += [(f"告警 alerts: {kind}", count) for kind, count in sorted(summary.alerts_by_kind.items())]
    rows += [(f"告警状态 alert state: {state}", n) for state, n in sorted(summary.alerts_by_state.items())]
    rows += [(f"待办任务 open work: {kind}", f"{n:,}") for kind, n in sorted(summary.work_by_kind.items())]
    rows += [
        (f"任务状态 work status: {status}", f"{n:,}") for status, n in sorted(summary.work_by_status.items())
    ]
    rows += [
        ("逾期已升级 overdue and escalated", f"{summary.escalated:,}"),
        (f"网格员上门 grid worker's visits ({GRID_WORKER})", summary.grid_worker_visits),
        ("照护日 care day runs", jobs.care_days),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    console.print(table)
    if team.grid_worker_password:
        console.print(f"[bold]网格员 grid worker[/]: {GRID_WORKER} / {team.grid_worker_password}")
