"""``yiyang orders``: the catalogue in force and the offer sweep (re-dispatch lapsed offers)."""

from __future__ import annotations

import json

import typer

orders_app = typer.Typer(
    help="服务订单 (service orders): catalogue and dispatch sweep.", no_args_is_help=True
)


@orders_app.command("catalogue")
def catalogue() -> None:
    """服务目录 Print the service catalogue in force (defaults changed by YIYANG_SERVICE_CATALOGUE_FILE) as JSON."""
    from yiyang.care.orders.schemas import ServiceRead
    from yiyang.care.orders.service import current_catalogue

    rows = [ServiceRead.of(s).model_dump(mode="json") for s in current_catalogue()]
    typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))


@orders_app.command("sweep")
def sweep() -> None:
    """派单巡检 Offers not taken in time go to the next provider; unassigned orders are tried again; orders long past
    their requested time are missed (run every few minutes)."""
    from yiyang.care.orders.service import current_catalogue, sweep_offers
    from yiyang.db import utcnow
    from yiyang.migrate import open_database

    db = open_database()
    try:
        with db.unit_of_work() as session:
            lapsed, offered, missed = sweep_offers(session, utcnow(), current_catalogue())
    finally:
        db.dispose()
    typer.echo(f"超时转派 lapsed {lapsed}, 新派单 offered {offered}, 逾期未接单 missed {missed}")
