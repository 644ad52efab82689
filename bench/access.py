"""The cost of scope + consent + audit on a resident profile read, against the same read without them.

A district is generated (not timed): the sample geography and agency files imported through the
real pipeline, then ``--residents`` more residents written directly, each with a family-doctor
contract (``resident_relationship``) and a tenth of them with consent decisions, so the scope and
consent subqueries run against tables of a realistic size. Then, in the same run:

- floor, service level: a unit of work reading one profile (resident, facts with provenance,
  conditions, latest observations) with the policy switched off (no checks, no audit row);
- ours, service level: the same read after ``authorize_profile`` (one query for scope x consent
  x field groups, one hash-chained audit row written and committed with the read);
- floor and ours through the API: ``GET /api/residents/{id}`` as a signed-in family doctor (bearer
  token), policy off and on; sign-in is paid in both.

Goal: ours / floor <= 1.3 at both levels. The last line is one JSON object.

    .venv/bin/python bench/access.py --residents 20000 --reads 2000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from yiyang.access import policy, service
from yiyang.access.actor import CredentialKind
from yiyang.access.audit import record_access, relax_read_commit
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.config import Settings
from yiyang.db import Database, bulk_insert
from yiyang.geo.models import Area, AreaLevel, Organisation, OrganisationKind
from yiyang.geo.service import import_geography
from yiyang.migrate import upgrade
from yiyang.residents import service as residents
from yiyang.residents.models import Resident
from yiyang.sources.models import Feed
from yiyang.sources.service import import_file

SAMPLES = Path(__file__).parents[1] / "docs" / "samples"
SINCE = dt.datetime(2020, 1, 1)


def build(database: Database, extra: int) -> tuple[int, list[int]]:
    """The district; returns the family doctor's user id and the ids of the sample residents."""
    with database.unit_of_work() as session:
        import_geography(session, SAMPLES / "geography.csv")
    import_file(database, Feed.health, SAMPLES / "health.csv")
    import_file(database, Feed.insurance, SAMPLES / "insurance_gb18030.csv")
    with database.unit_of_work() as session:
        district = session.execute(select(Area).where(Area.level == AreaLevel.district)).scalars().first()
        team = Organisation(
            code="FD-T1", name="家庭医生团队", kind=OrganisationKind.family_doctor_team, area_id=district.id
        )
        other = Organisation(
            code="FD-T2", name="另一团队", kind=OrganisationKind.family_doctor_team, area_id=district.id
        )
        session.add_all([team, other])
        session.flush()
        sample = list(session.execute(select(Resident.id).order_by(Resident.id)).scalars())
        first = session.execute(select(func.max(Resident.id))).scalar_one() + 1
        now = dt.datetime(2026, 1, 1)
        bulk_insert(
            session, "resident",
            ("id", "name", "name_pinyin", "sex", "birth_date", "status", "needs_review", "provenance", "created_at", "updated_at"),
            ((first + i, f"居民{i}", f"ju min {i}", "F", dt.date(1940 + i % 30, 1, 1), "active", False, "{}", now, now)
             for i in range(extra)),
        )  # fmt: skip
        # Every extra resident contracted with the other team; the sample ones with the bench team.
        rows = [(r, "contract", other.id, SINCE, "bench", r, SINCE) for r in range(first, first + extra)]
        rows += [(r, "contract", team.id, SINCE, "bench", r, SINCE) for r in sample]
        bulk_insert(
            session, "resident_relationship",
            ("resident_id", "kind", "organisation_id", "valid_from", "source_type", "source_id", "created_at"), rows,
        )  # fmt: skip
        consents = [
            (r, category, "social", "care", "permit", SINCE, "paper_form", SINCE)
            for r in range(first, first + extra, 10)
            for category in ("identity", "care_services")
        ]
        bulk_insert(
            session, "consent",
            ("resident_id", "category", "recipient_class", "purpose", "decision", "valid_from", "source", "created_at"),
            consents,
        )  # fmt: skip
        doctor = service.create_user(session, "bench.doctor")
        service.grant_role(session, doctor, Role.family_doctor, organisation_id=team.id)
        return doctor.id, sample


def time_reads(reads: int, read: Callable[[int], None], ids: list[int]) -> float:
    for resident_id in ids:  # warm caches and statement compilation
        read(resident_id)
    started = time.perf_counter()
    for index in range(reads):
        read(ids[index % len(ids)])
    return reads / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=20_000)
    parser.add_argument("--reads", type=int, default=2_000)
    parser.add_argument(
        "--database-url", default=None, help="an empty database; default: a temporary SQLite file"
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="yiyang-bench-access-"))
    url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
    settings = Settings(data_dir=folder)
    database = Database(url, settings)
    upgrade(database.engine)
    started = time.perf_counter()
    doctor_id, sample = build(database, args.residents)
    print(
        f"setup  {args.residents:,} extra residents, {len(sample)} sample residents in {time.perf_counter() - started:.1f} s"
    )

    with database.unit_of_work() as session:
        actor = service.load_actor(session, doctor_id, dt.datetime.now(dt.UTC))

    def service_read(resident_id: int) -> None:
        with database.unit_of_work() as session:
            relax_read_commit(session)  # as the app's GET requests do (deps.get_session)
            groups = policy.authorize_profile(session, actor, resident_id)
            resident = residents.get_active_resident(session, resident_id)
            residents.profile_facts(session, resident)
            if policy.FieldGroup.clinical in groups:
                residents.conditions_of(session, resident_id)
                residents.latest_observations(session, resident_id)

    app = create_app(database, settings)
    with database.unit_of_work() as session:
        user = session.get(service.User, doctor_id)
        issued = service.issue_credential(
            session, user, CredentialKind.bearer, dt.timedelta(days=1), dt.datetime.now(dt.UTC)
        )
    client = TestClient(app, headers={"Authorization": f"Bearer {issued.secret}"})

    def api_read(resident_id: int) -> None:
        response = client.get(f"/api/residents/{resident_id}")
        assert response.status_code == 200, response.text

    figures = {}
    for level, read in (("service", service_read), ("api", api_read)):
        policy.configure(settings, enforce=False)
        floor = time_reads(args.reads, read, sample)
        policy.configure(settings, enforce=True)
        ours = time_reads(args.reads, read, sample)
        ratio = floor / ours  # time per read, ours over floor
        figures[level] = (floor, ours, ratio)
        print(f"floor  {level:<7} profile read, policy off   {floor:10,.0f} reads/s")
        print(
            f"ours   {level:<7} scope + consent + audit  {ours:10,.0f} reads/s   ratio {ratio:.2f} (goal <= 1.3)"
        )

    # Where the difference goes: one hash-chained audit row (and its commit) on its own.
    def audit_only(resident_id: int) -> None:
        with database.unit_of_work() as session:
            relax_read_commit(session)
            record_access(
                session, actor, action="read", resource_type="resident_profile", resident_id=resident_id
            )

    audit_rate = time_reads(args.reads, audit_only, sample)
    print(f"part   service one audit row + commit alone   {audit_rate:10,.0f} rows/s "
          f"({1000 / audit_rate:.2f} ms of the {1000 / figures['service'][1]:.2f} ms read)")  # fmt: skip

    with database.unit_of_work() as session:
        audited = session.execute(text("SELECT count(*) FROM audit_event")).scalar_one()
    print(f"audit rows written: {audited:,}")
    database.dispose()
    shutil.rmtree(folder, ignore_errors=True)
    result = {
        "residents": args.residents + len(sample),
        "reads": args.reads,
        "database": database.engine.dialect.name,
        "service_reads_per_s": round(figures["service"][1]),
        "service_floor_reads_per_s": round(figures["service"][0]),
        "service_ratio": round(figures["service"][2], 3),
        "api_reads_per_s": round(figures["api"][1]),
        "api_floor_reads_per_s": round(figures["api"][0]),
        "api_ratio": round(figures["api"][2], 3),
        "audit_row_ms": round(1000 / audit_rate, 3),
        "goal_ratio": 1.3,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
