"""Placing and dispatching service orders on PostgreSQL, in a district with many volunteers.

A district of streets, communities and grids is generated (not timed) with elderly-care stations
covering their street and volunteers covering their community, then in the same run:

- floor: one bare ``service_order`` row inserted and committed per request (what any order
  system pays at least);
- ours: ``place_order`` per request, committed: the audit row, eligibility and subsidy, the
  covering providers found through the area's ancestors, their open orders counted, the pure
  ranking, the resident's consent, the offer and two history rows. Meals go to stations, escorts
  to volunteers where the resident permits volunteers (six in ten do); the other escorts wait
  unassigned, since no station here takes escorts.

The last line is one JSON object.

    .venv/bin/python bench/dispatch.py --streets 29 --volunteers 98300 --orders 5000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import time

import orjson
from scratch import add_scratch_arguments, scratch_database  # bench/scratch.py
from sqlalchemy import select, text

from yiyang.access.actor import Actor, RoleGrant
from yiyang.access.roles import Role
from yiyang.care.orders import service as orders
from yiyang.care.orders.catalogue import DEFAULT_CATALOGUE
from yiyang.care.orders.models import OrderStatus, PlacedAs, ServiceOrder
from yiyang.db import Database, bulk_insert, db_datetime
from yiyang.migrate import upgrade

NOW = dt.datetime(2026, 11, 24, 2, tzinfo=dt.UTC)
COMMUNITIES_PER_STREET, GRIDS_PER_COMMUNITY = 10, 5
PERMIT_SHARE = 0.6  # residents who permit volunteers to serve them


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streets", type=int, default=29)
    parser.add_argument("--volunteers", type=int, default=98_300)
    parser.add_argument("--residents", type=int, default=20_000)
    parser.add_argument("--orders", type=int, default=5_000)
    add_scratch_arguments(parser)
    args = parser.parse_args()

    with scratch_database(args.pg_url, keep=args.keep) as url:
        floor_s, ours_s, by_status = run(url, args)

    floor_rate, ours_rate = args.orders / floor_s, args.orders / ours_s
    print(f"district: {args.streets} streets, {args.volunteers:,} volunteers, {args.residents:,} residents")
    print(f"floor  bare order insert + commit, {args.orders:,} orders   {floor_rate:,.0f} orders/s")
    print(
        f"ours   place + dispatch, {args.orders:,} orders          {ours_rate:,.0f} orders/s   ratio {ours_rate / floor_rate:.2f}"
    )
    print(f"outcome {dict((str(k), v) for k, v in by_status.items())}")
    print(
        json.dumps(
            {
                "orders": args.orders,
                "volunteers": args.volunteers,
                "streets": args.streets,
                "orders_per_s": round(ours_rate, 1),
                "floor_orders_per_s": round(floor_rate, 1),
                "ratio": round(ours_rate / floor_rate, 3),
                "offered": by_status.get(OrderStatus.offered, 0),
            }  # fmt: skip
        )
    )


def run(url: str, args: argparse.Namespace) -> tuple[float, float, dict]:  # type: ignore[type-arg]
    """The floor's and our seconds for the same orders, and how ours ended, by status."""
    database = Database(url)
    try:
        upgrade(database.engine)
        residents = generate(database, args.streets, args.volunteers, args.residents)
        with database.unit_of_work() as session:
            district = session.execute(text("SELECT id FROM area WHERE code = 'D'")).scalar_one()
        # Orders are placed by a civil-affairs officer over the district (a district admin keeps the
        # registry and may not see care services).
        actor = Actor(
            user_id=1,
            username="bench-officer",
            grants=(RoleGrant(Role.civil_affairs_officer, area_id=district),),
        )
        rng = random.Random(7)
        picks = [(rng.choice(residents), rng.choice(("meal", "escort"))) for _ in range(args.orders)]

        started = time.perf_counter()
        for resident_id, code in picks:
            with database.unit_of_work() as session:
                area = session.execute(
                    text("SELECT community_id FROM resident WHERE id = :id"), {"id": resident_id}
                )
                session.add(
                    ServiceOrder(
                        resident_id=resident_id,
                        service_code=code,
                        status=OrderStatus.unassigned,
                        placed_as=PlacedAs.staff,
                        area_id=area.scalar_one(),
                        price_cents=0,
                        subsidy_cents=0,
                        created_at=NOW,
                        updated_at=NOW,
                    )  # fmt: skip
                )
        floor_s = time.perf_counter() - started
        with database.unit_of_work() as session:
            session.execute(text("TRUNCATE service_order_transition, service_order RESTART IDENTITY CASCADE"))

        started = time.perf_counter()
        for resident_id, code in picks:
            with database.unit_of_work() as session:
                orders.place_order(
                    session, actor, resident_id, orders.OrderRequest(code), NOW, DEFAULT_CATALOGUE
                )
        ours_s = time.perf_counter() - started
        with database.unit_of_work() as session:
            by_status = dict(
                session.execute(
                    select(ServiceOrder.status, text("count(*)")).group_by(ServiceOrder.status)
                ).all()
            )
    finally:
        database.dispose()
    return floor_s, ours_s, by_status


def generate(database: Database, streets: int, volunteers: int, residents: int) -> list[int]:
    """Areas, stations, volunteers (users, roles, providers, coverage) and residents, by COPY."""
    now = db_datetime(NOW)
    with database.unit_of_work() as session:
        session.execute(
            text(
                "INSERT INTO user_account (username, display_name, active, created_at) "
                "VALUES ('bench-officer', 'bench', true, :now)"
            ),
            {"now": now},
        )
        session.execute(
            text("INSERT INTO area (level, code, name, path) VALUES ('district', 'D', '区', 'D')")
        )
        district = session.execute(text("SELECT id FROM area WHERE code = 'D'")).scalar_one()
        rows = [("street", f"D{s:02d}", f"街道{s}", district, f"D/D{s:02d}") for s in range(streets)]
        bulk_insert(session, "area", ("level", "code", "name", "parent_id", "path"), rows)
        street_ids = dict(session.execute(text("SELECT code, id FROM area WHERE level = 'street'")).all())
        rows = [
            ("community", f"{code}C{c}", f"社区{c}", street_ids[code], f"D/{code}/{code}C{c}")
            for code in street_ids
            for c in range(COMMUNITIES_PER_STREET)
        ]
        bulk_insert(session, "area", ("level", "code", "name", "parent_id", "path"), rows)
        communities = session.execute(text("SELECT id, code, path FROM area WHERE level = 'community'")).all()
        rows = [
            ("grid", f"{code}G{g}", f"网格{g}", cid, f"{path}/{code}G{g}")
            for cid, code, path in communities
            for g in range(GRIDS_PER_COMMUNITY)
        ]
        bulk_insert(session, "area", ("level", "code", "name", "parent_id", "path"), rows)
        # stations: ~5.5 per street (160 for 29 streets), each covering its street
        rows = [
            (f"ST{i}", f"驿站{i}", "elderly_care_station", communities[i % len(communities)][0])
            for i in range(max(1, round(streets * 5.5)))
        ]
        bulk_insert(session, "organisation", ("code", "name", "kind", "area_id"), rows)
        parent = dict(session.execute(text("SELECT id, parent_id FROM area")).all())
        stations = session.execute(text("SELECT id, area_id FROM organisation")).all()
        skills = orjson.dumps(["meal_delivery", "personal_care"]).decode()
        rows = [("station", org, area, skills, "[]", 20, True, now, now) for org, area in stations]
        columns = ("kind", "organisation_id", "base_area_id", "skills", "availability", "capacity", "active",
                   "created_at", "updated_at")  # fmt: skip
        bulk_insert(session, "service_provider", columns, rows)
        covered = session.execute(text("SELECT id, base_area_id FROM service_provider")).all()
        bulk_insert(
            session, "service_provider_area", ("provider_id", "area_id"), [(p, parent[a]) for p, a in covered]
        )
        # volunteers: a user, the role, a provider covering their community
        bulk_insert(
            session, "user_account", ("username", "display_name", "active", "created_at"),
            [(f"v{i}", f"志愿者{i}", True, now) for i in range(volunteers)],
        )  # fmt: skip
        users = (
            session.execute(text("SELECT id FROM user_account WHERE username LIKE 'v%' ORDER BY id"))
            .scalars()
            .all()
        )
        bulk_insert(
            session,
            "role_membership",
            ("user_id", "role", "granted_at"),
            [(u, "volunteer", now) for u in users],
        )
        escort = orjson.dumps(["escort", "errand"]).decode()
        rows = [
            ("volunteer", u, communities[i % len(communities)][0], escort, "[]", 2, True, now, now)
            for i, u in enumerate(users)
        ]
        columns = ("kind", "user_id", "base_area_id", "skills", "availability", "capacity", "active",
                   "created_at", "updated_at")  # fmt: skip
        bulk_insert(session, "service_provider", columns, rows)
        covered = session.execute(
            text("SELECT id, base_area_id FROM service_provider WHERE kind = 'volunteer'")
        ).all()
        bulk_insert(session, "service_provider_area", ("provider_id", "area_id"), covered)
        grids = session.execute(text("SELECT id, parent_id FROM area WHERE level = 'grid'")).all()
        rng = random.Random(3)
        rows = []
        for i in range(residents):
            grid, community = grids[i % len(grids)]
            born = dt.date(1930 + rng.randrange(30), 1 + rng.randrange(12), 1 + rng.randrange(28))
            rows.append((f"老人{i}", f"laoren {i}", born, community, grid, rng.random() < 0.05, False, "active",
                         False, "{}", now, now))  # fmt: skip
        columns = ("name", "name_pinyin", "birth_date", "community_id", "grid_id", "dibao", "tekun", "status",
                   "needs_review", "provenance", "created_at", "updated_at")  # fmt: skip
        bulk_insert(session, "resident", columns, rows)
        # Volunteers serve only residents who permit it (consent for the social recipient class);
        # about six in ten have signed the paper form.
        ids = session.execute(text("SELECT id FROM resident ORDER BY id")).scalars().all()
        rows = [
            (rid, "care_services", "social", "care", "permit", now, "paper_form", now)
            for rid in ids
            if rng.random() < PERMIT_SHARE
        ]
        columns = ("resident_id", "category", "recipient_class", "purpose", "decision", "valid_from", "source",
                   "created_at")  # fmt: skip
        bulk_insert(session, "consent", columns, rows)
        session.execute(text("ANALYZE"))
        return list(session.execute(text("SELECT id FROM resident ORDER BY id")).scalars())


if __name__ == "__main__":
    main()
