"""``yiyang demo``: a synthetic district, imported through the real pipeline, served at once."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from yiyang.config import get_settings
from yiyang.sources.models import Feed

console = Console(stderr=True)


def demo_command(
    residents: int = typer.Option(20_000, min=100, max=400_000, help="elders in the synthetic district"),
    seed: int = typer.Option(7, help="random seed: the same seed builds the same district"),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="serve the web app when built"),
    port: int = typer.Option(None, help="port to serve on (default 8000)"),
) -> None:
    """Build a synthetic district, write the three agencies' files, import them, serve the staff web."""
    from yiyang.demo.synthetic import generate_district
    from yiyang.geo.service import import_geography, import_organisations
    from yiyang.migrate import open_database as database
    from yiyang.sources.commands import run_import

    settings = get_settings()
    out_dir = Path(settings.data_dir) / "demo" / f"district-{residents}-{seed}"
    console.print(f"[bold]1/3[/] 生成合成辖区 generating a district of {residents:,} elders -> {out_dir}")
    files = generate_district(out_dir, residents, seed=seed, progress=True)

    console.print("[bold]2/3[/] 导入辖区与机构 importing geography and organisations")
    db = database()
    with db.unit_of_work() as session:
        import_geography(session, files.geography)
        import_organisations(session, files.organisations)
    db.dispose()

    console.print("[bold]3/3[/] 导入卫健、医保、民政数据 importing health, insurance and civil-affairs files")
    for feed, path in ((Feed.health, files.health), (Feed.insurance, files.insurance), (Feed.civil, files.civil)):
        run_import(feed, Path(path), report=None)

    _demo_sign_in()
    if serve:
        from yiyang.cli import serve as serve_command

        host = settings.host
        console.print(f"[green]打开 open http://{host}:{port or settings.port}/residents")
        serve_command(host=host, port=port or settings.port)


def _demo_sign_in() -> None:
    """A demo account: health officer over the district and administrator, its password shown once."""
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
            return
        password = secrets.token_urlsafe(9)
        user = access.create_user(session, "demo", password=password, display_name="演示 demo")
        access.grant_role(session, user, Role.health_officer, area_id=district.id)
        access.grant_role(session, user, Role.district_admin)
    db.dispose()
    console.print(f"[bold]登录 sign in[/]: demo / {password}")
