"""Import + record linkage of a synthetic district on PostgreSQL, against its truth set.

Prints the floor (plain COPY of the same rows into text tables, in the same run), our figure
(the three agency files through the real import pipeline: parse, validate, link, fold, write),
their ratio, and pairwise precision and recall of the linkage against the generator's truth.
Per feed it also prints the CPU time each row cost this process (Python, every thread) and the
PostgreSQL server's processes, when the server runs on this machine (read from /proc): on two
cores, 20,000 rows/s leaves 100 µs of CPU per row for both. From them it works out the most
rows per second that CPU per row allows on this machine's cores, and how many cores the run
kept busy. The last line is one JSON object.

    .venv/bin/python bench/linkage.py --residents 400000
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from scratch import add_scratch_arguments, scratch_database  # bench/scratch.py
from sqlalchemy import text

from yiyang.config import Settings
from yiyang.db import Database
from yiyang.demo.synthetic import generate_district
from yiyang.geo.service import import_geography, import_organisations
from yiyang.migrate import upgrade
from yiyang.sources.feeds import detect_encoding
from yiyang.sources.models import Feed
from yiyang.sources.service import import_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=7)
    add_scratch_arguments(parser)
    parser.add_argument("--work", type=Path, default=Path("data/bench"))
    args = parser.parse_args()

    out_dir = args.work / f"district-{args.residents}-{args.seed}"
    if not (out_dir / "truth.csv").exists():
        say(f"generating {args.residents:,} residents into {out_dir} (not timed)")
    files = generate_district(
        out_dir, args.residents, seed=args.seed, civil_format="csv", progress=sys.stderr.isatty()
    )
    feeds = (
        (Feed.health, Path(files.health)),
        (Feed.insurance, Path(files.insurance)),
        (Feed.civil, Path(files.civil)),
    )

    with scratch_database(args.pg_url, keep=args.keep) as url:
        result = run(url, feeds, files)
    print(json.dumps(result))


def run(url: str, feeds, files) -> dict:  # type: ignore[no-untyped-def]
    database = Database(url, settings=Settings())
    upgrade(database.engine)
    with database.unit_of_work() as session:
        import_geography(session, Path(files.geography))
        import_organisations(session, Path(files.organisations))

    # Floor: the same rows, decoded and COPYed as text, nothing else.
    floor_rows, floor_s = copy_floor(database, feeds)
    say(f"floor  plain COPY, {floor_rows:,} rows          {floor_rows / floor_s:>10,.0f} rows/s")

    counts: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    writes: Counter[str] = Counter()  # on the writer thread, beside the next batch
    cpu: Counter[str] = Counter()  # seconds of CPU: this process, the server's processes
    cpu_per_feed: dict[str, dict[str, int]] = {}
    started = time.perf_counter()
    for feed, path in feeds:
        t0 = time.perf_counter()
        python_at, server_at = time.process_time(), server_cpu()
        report = import_file(database, feed, path)
        python_s, server_s = time.process_time() - python_at, server_cpu_since(server_at)
        counts.update(report.counts)
        stages.update(report.stage_seconds)
        writes.update(report.write_seconds)
        stages["read and commit"] += time.perf_counter() - t0 - sum(report.stage_seconds.values())
        feed_rows = report.counts["rows"]
        used = {"python": python_s}
        if server_s is not None:
            used["postgres"] = server_s
        cpu.update(used)
        cpu_per_feed[feed.value] = {who: round(s / feed_rows * 1e6) for who, s in used.items()}
        say(
            f"  {feed.value:<9} {feed_rows:>9,} rows in {time.perf_counter() - t0:6.1f}s  {dict(report.counts)}"
        )
        say(
            "            CPU per row (us): "
            + ", ".join(f"{who} {us:,}" for who, us in cpu_per_feed[feed.value].items())
        )
    ours_s = time.perf_counter() - started
    say(
        "  stages (us/row): "
        + ", ".join(f"{stage} {seconds / counts['rows'] * 1e6:,.0f}" for stage, seconds in stages.items())
    )
    say(
        "  writes, on their own thread beside the next batch (us/row): "
        + ", ".join(f"{stage} {seconds / counts['rows'] * 1e6:,.0f}" for stage, seconds in writes.items())
    )
    say(
        "  CPU per row (us): "
        + ", ".join(f"{who} {seconds / counts['rows'] * 1e6:,.0f}" for who, seconds in cpu.items())
        + " (20,000 rows/s on two cores leaves 100 for both)"
    )
    rows = counts["rows"]
    # What the CPU per row allows: the run's rate if every core were busy all the time with this
    # import and nothing else, and how many cores it kept busy on average.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    # Without the server's share (a server elsewhere) both would count Python alone: left out.
    cpu_s = sum(cpu.values())
    cpu_bound = round(rows / cpu_s * cores) if "postgres" in cpu else None
    cores_busy = round(cpu_s / ours_s, 2) if "postgres" in cpu else None
    if cpu_bound is not None:
        say(
            f"  at most {cpu_bound:,} rows/s on {cores} cores at this CPU per row; {cores_busy:.2f} cores busy"
        )
    say(
        f"ours   import + link, {rows:,} rows       {rows / ours_s:>10,.0f} rows/s   ratio {rows / ours_s / (floor_rows / floor_s):.2f}"
    )

    quality = linkage_quality(database, Path(files.truth))
    say(
        f"linkage pairwise precision {quality['precision']:.4f} recall {quality['recall']:.4f}; "
        f"rows without ID: precision {quality['no_id_precision']:.4f} recall {quality['no_id_recall']:.4f}"
    )
    database.dispose()
    return {
        "rows": rows,
        "seconds": round(ours_s, 2),
        "rows_per_s": round(rows / ours_s),
        "floor_rows_per_s": round(floor_rows / floor_s),
        "ratio": round((rows / ours_s) / (floor_rows / floor_s), 3),
        "rejected": counts["rejected"],
        "review": counts["linked_review"],
        "stage_us_per_row": {stage: round(seconds / rows * 1e6) for stage, seconds in stages.items()},
        "write_us_per_row": {stage: round(seconds / rows * 1e6) for stage, seconds in writes.items()},
        "cpu_us_per_row": {who: round(seconds / rows * 1e6) for who, seconds in cpu.items()},
        "cpu_us_per_row_by_feed": cpu_per_feed,
        "cpu_bound_rows_per_s": cpu_bound,
        "cores_busy": cores_busy,
        "load_average": round(os.getloadavg()[0], 2),
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in quality.items()},
    }


def server_cpu() -> dict[int, float] | None:
    """CPU seconds (user and system) used so far by each of this machine's PostgreSQL processes,
    by pid, or None where /proc does not show them (another OS, or a server elsewhere). Every
    backend counts, with the checkpointer, the WAL writer and autovacuum: they all work for the
    import."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if name.startswith("postgres"):
            used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return used or None


def server_cpu_since(before: dict[int, float] | None) -> float | None:
    """Seconds of CPU the server's processes used since ``before`` (a ``server_cpu`` reading).
    A process that ended in between is not counted: the figure errs low, never high."""
    after = server_cpu()
    if before is None or after is None:
        return None
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def copy_floor(database: Database, feeds) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    total = 0
    started = time.perf_counter()
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for feed, path in feeds:
            with open_text(path) as handle:
                reader = csv.reader(handle)
                header = next(reader)
                table = f"floor_{feed.value}"
                cursor.execute(
                    f"CREATE TEMP TABLE {table} ({', '.join(f'c{i} text' for i in range(len(header)))})"
                )
                with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                    for row in reader:
                        copy.write_row(row)
                        total += 1
        raw.commit()
    finally:
        raw.close()
    return total, time.perf_counter() - started


def open_text(path: Path) -> io.TextIOWrapper:
    encoding = detect_encoding(path)
    return path.open(encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline="")


def linkage_quality(database: Database, truth_path: Path) -> dict:
    """Pairwise precision/recall: pairs of accepted rows put in one resident vs one true person."""
    truth: dict[tuple[str, str], str] = {}
    with truth_path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            truth[(row["feed"], row["source_key"])] = row["person_id"]
    with database.engine.connect() as connection:
        linked = connection.execute(
            text("SELECT feed, source_key, resident_id, id_number_enc IS NULL FROM source_record")
        ).all()
    by_cluster: dict[int, list[str]] = defaultdict(list)
    no_id_rows = []
    for feed, key, resident_id, without_id in linked:
        person = truth.get((feed, key))
        if person is None:
            continue
        by_cluster[resident_id].append(person)
        if without_id:
            no_id_rows.append((resident_id, person))
    predicted = true_positive = 0
    for persons in by_cluster.values():
        n = len(persons)
        predicted += n * (n - 1) // 2
        true_positive += sum(c * (c - 1) // 2 for c in Counter(persons).values())
    accepted_people = Counter(person for persons in by_cluster.values() for person in persons)
    actual = sum(c * (c - 1) // 2 for c in accepted_people.values())

    # Rows that carried no ID number: was the resident chosen the one that holds the same person?
    owner: dict[int, Counter[str]] = {rid: Counter(p) for rid, p in by_cluster.items()}
    home: dict[str, int] = {}
    for rid, persons in owner.items():
        for person, n in persons.items():
            if n > owner.get(home.get(person, -1), Counter()).get(person, 0):
                home[person] = rid
    no_id_right = sum(1 for rid, person in no_id_rows if owner[rid].most_common(1)[0][0] == person)
    no_id_home = sum(1 for rid, person in no_id_rows if home.get(person) == rid)
    return {
        "precision": true_positive / predicted if predicted else 1.0,
        "recall": true_positive / actual if actual else 1.0,
        "no_id_rows": len(no_id_rows),
        "no_id_precision": no_id_right / len(no_id_rows) if no_id_rows else 1.0,
        "no_id_recall": no_id_home / len(no_id_rows) if no_id_rows else 1.0,
    }


def say(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    main()
