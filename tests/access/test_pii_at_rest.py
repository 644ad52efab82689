"""ID numbers and phones rest encrypted; exact lookups still find them through blind indexes;
everything that shows them shows them masked."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from tests.access.pii_samples import SAMPLES, WANG_ID, WANG_PHONE, database_text, import_samples, sample_pii
from yiyang.access import pii
from yiyang.app import create_app
from yiyang.db import Database
from yiyang.fhir.mapping import RESIDENT_ID_SYSTEM
from yiyang.residents.models import FactChange, Resident, SourceRecord
from yiyang.residents.names import name_pinyin
from yiyang.sources import linkage
from yiyang.sources.models import Feed
from yiyang.sources.records import SourceRow
from yiyang.sources.service import ImportRunner, import_file, import_source_rows

from ..signed_in import sign_in_as_clinician


@pytest.fixture
def imported(db: Database) -> Database:
    import_samples(db)
    return db


def signed_in(database: Database) -> TestClient:
    """A client signed in as a family doctor contracted with everyone who also keeps the registry."""
    client = TestClient(create_app(database))
    sign_in_as_clinician(client, database)
    return client


def find(client: TestClient, q: str) -> list[int]:
    response = client.get("/api/residents", params={"q": q})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_no_id_number_or_phone_rests_in_plain_text_anywhere(imported: Database) -> None:
    # given the three sample agency files imported through the real pipeline
    values = sample_pii(imported)
    assert WANG_ID in values and WANG_PHONE in values
    # when every row of every table is read as text
    dump = database_text(imported)
    assert "王秀英" in dump  # (names are not encrypted: the dump does show what rests in clear)
    # then none of their ID numbers or phones is there in clear
    assert [value for value in values if value in dump] == []
    # and the sealed columns name the key that sealed them
    with imported.engine.connect() as connection:
        sealed = connection.execute(text("SELECT id_number_enc, phone_enc FROM resident")).all()
    assert sealed and all(v is None or v.startswith("test1:") for row in sealed for v in row)


def test_the_orm_reads_plain_values_and_the_source_record_keeps_them_sealed_outside_its_payload(
    imported: Database,
) -> None:
    with imported.unit_of_work() as session:
        wang = session.scalars(
            select(Resident).where(Resident.id_number_bidx.in_(pii.lookup_indexes("id_number", WANG_ID)))
        ).one()
        assert (wang.id_number, wang.phone) == (WANG_ID, WANG_PHONE)
        record = session.scalars(select(SourceRecord).where(SourceRecord.resident_id == wang.id)).first()
        assert "id_number" not in record.payload and "phone" not in record.payload
        assert record.full_payload()["id_number"] == WANG_ID


def test_comparing_an_encrypted_column_with_a_value_fails_loudly() -> None:
    # a lookup that forgot the blind index must not silently find no one
    with pytest.raises(pii.SealedValueComparison):
        select(Resident).where(Resident.id_number == WANG_ID)
    with pytest.raises(pii.SealedValueComparison):
        select(Resident).where(Resident.phone.in_([WANG_PHONE]))
    select(Resident).where(Resident.id_number.is_(None))  # a NULL test is fine


def test_registry_search_finds_by_id_number_and_phone_in_any_written_form(imported: Database) -> None:
    client = signed_in(imported)
    wang = find(client, WANG_ID)
    assert len(wang) == 1
    assert find(client, WANG_ID.lower()) == wang
    assert find(client, WANG_PHONE) == wang
    assert find(client, "139 1100 2345") == wang
    assert find(client, "110108194803120243") == []  # a wrong check digit names no one


def test_fhir_patient_search_by_identifier_uses_the_blind_index(imported: Database) -> None:
    client = signed_in(imported)
    bundle = client.get("/fhir/Patient", params={"identifier": f"{RESIDENT_ID_SYSTEM}|{WANG_ID}"}).json()
    assert bundle["total"] == 1
    assert client.get("/fhir/Patient", params={"identifier": WANG_ID.lower()}).json()["total"] == 1
    patient = bundle["entry"][0]["resource"]
    # found by the full number, shown masked (the full value only through the audited reveal)
    assert any(
        identifier["value"] == WANG_ID[:6] + "********" + WANG_ID[-4:] for identifier in patient["identifier"]
    )


def test_a_later_import_links_exactly_on_the_encrypted_id_number(imported: Database) -> None:
    # given the registry built from the samples; when another agency's row carries a known ID number
    with imported.unit_of_work() as session:
        before = session.scalar(select(text("count(*)")).select_from(Resident))
    row = SourceRow(
        feed=Feed.civil, line=2, source_key="MZ-NEW-1", observed_at=dt.datetime(2025, 10, 1, tzinfo=dt.UTC),
        name="王秀英", id_number=WANG_ID, sex="F", birth_date=dt.date(1948, 3, 12), phone="13911002345",
    )  # fmt: skip
    with imported.unit_of_work() as session:
        report = import_source_rows(session, Feed.civil, [row], label="later.csv")
    # then the row joins the resident holding that ID number, and nobody new is registered
    assert report.counts["linked_id_number"] == 1
    with imported.unit_of_work() as session:
        assert session.scalar(select(text("count(*)")).select_from(Resident)) == before


def test_linkage_finds_candidates_by_phone_index_and_compares_their_opened_phones(imported: Database) -> None:
    # given the registry; when a row is blocked on nothing but its phone
    row_keys = linkage.make_keys("某某", None, None, "+86 139-1100-2345", None)
    with imported.unit_of_work() as session:
        runner = ImportRunner(session, Feed.civil, run_id=0)
        found = list(runner._load_candidates([row_keys], without_id=False))
    # then the resident with that phone is a candidate, and her phone is there to compare in clear
    assert [candidate.name for _, candidate, _ in found] == ["王秀英"]
    candidate = found[0][1]
    assert candidate.phone == WANG_PHONE
    one_off = linkage.make_keys("王秀英", "F", dt.date(1948, 3, 12), "13911002354", None)
    assert linkage.compare(one_off, candidate).levels["phone"] == "one_edit"


def test_a_row_without_id_number_joins_the_resident_it_matches(imported: Database) -> None:
    row = SourceRow(
        feed=Feed.civil, line=2, source_key="MZ-NOID-1", observed_at=dt.datetime(2025, 10, 1, tzinfo=dt.UTC),
        name="王秀英", id_number=None, sex="F", birth_date=dt.date(1948, 3, 12), phone="13911002354",
        address="北京市海淀区翠微路2号院3号楼2单元501",
    )  # fmt: skip
    with imported.unit_of_work() as session:
        report = import_source_rows(session, Feed.civil, [row], label="noid.csv")
    assert report.counts["new_resident"] == 0, report.counts
    assert report.counts["linked_probabilistic"] == 1


def test_reimporting_an_unchanged_file_changes_nothing(imported: Database) -> None:
    # the keyed content hash is stable: every row is found unchanged
    report = import_file(imported, Feed.health, SAMPLES / "health.csv")
    assert report.counts["unchanged"] > 0
    assert report.counts["accepted"] == report.counts["updated"] == 0


def test_profile_sources_and_history_show_masked_values(imported: Database) -> None:
    client = signed_in(imported)
    (wang,) = find(client, WANG_ID)
    facts = {f["attribute"]: f["value"] for f in client.get(f"/api/residents/{wang}").json()["facts"]}
    assert facts["id_number"] == "110108********0242"
    assert facts["phone"] == "139****2345"
    sources = client.get(f"/api/residents/{wang}/sources").json()
    assert {s["payload"]["id_number"] for s in sources} <= {"110108********0242", None}
    assert WANG_ID not in str(sources) and WANG_PHONE not in str(sources)
    assert WANG_ID not in client.get(f"/api/residents/{wang}/history").text


def test_history_keeps_only_masked_forms_of_a_changed_phone(db: Database) -> None:
    # given a resident whose phone changes with a newer record
    with db.unit_of_work() as session:
        resident = Resident(name="赵凤兰", name_pinyin=name_pinyin("赵凤兰"))
        session.add(resident)
        session.flush()
        for key, day, phone in (("A", 1, "13800001111"), ("B", 2, "13900002222")):
            session.add(
                SourceRecord(
                    feed=Feed.civil, source_key=key, resident_id=resident.id, line=1,
                    observed_at=dt.datetime(2025, 1, day, tzinfo=dt.UTC), content_hash="0" * 32,
                    payload={"name": "赵凤兰"}, phone=phone, link_method="new",
                )
            )  # fmt: skip
        session.flush()
        from yiyang.residents.service import rebuild_resident

        rebuild_resident(session, resident.id, reason="test")
        assert resident.phone == "13900002222"
        assert resident.phone_bidx == pii.write_index("phone", "13900002222")
    # then the history row says the phone changed, masked
    with db.unit_of_work() as session:
        changes = session.scalars(select(FactChange).where(FactChange.attribute == "phone")).all()
    assert [(c.old_value, c.new_value) for c in changes] == [(None, "139****2222")]
