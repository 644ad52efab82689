"""Timed jobs (定时任务): a small registry and the loop that runs them.

A job is a name, an interval and ``function(database, now)``; the function opens and commits
its own unit of work. Domains register their jobs in ``install_jobs`` (as events are wired in
``events.install_handlers``). ``yiyang worker`` runs them in their own process; ``yiyang serve``
runs them in the web process for the embedded default (``--jobs``); each job has a thread of its
own, so a long one holds up no other. Several processes may run the same jobs: each job's work is
chosen by indexed due times and is safe to repeat, so a second runner only finds less to do.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from yiyang.db import Database, utcnow

log = logging.getLogger("yiyang.jobs")

JobFunction = Callable[[Database, dt.datetime], Any]
# A run that failed (the database away, a lock that timed out) is tried again this soon rather
# than a whole interval later: the care day runs every 6 hours, time-bank expiry once a day.
RETRY_AFTER = dt.timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    every: dt.timedelta
    run: JobFunction


_jobs: dict[str, Job] = {}


def register(job: Job) -> None:
    _jobs[job.name] = job


def registered() -> list[Job]:
    return list(_jobs.values())


def clear() -> None:
    _jobs.clear()


def install_jobs() -> None:
    """The timed jobs the whole system runs; called by ``worker`` and ``serve --jobs``."""
    from yiyang.alerts.engine import register_jobs as alert_jobs

    alert_jobs()
    register(
        Job("care.day", dt.timedelta(hours=6), _care_day)
    )  # idempotent: re-runs find the day's work made
    register(Job("orders.sweep", dt.timedelta(minutes=2), _orders_sweep))
    register(Job("timebank.expire", dt.timedelta(days=1), _timebank_expire))
    register(Job("devices.broker_pending", dt.timedelta(minutes=1), _broker_pending))
    # Time windows (rehab after a claim, fall risk, recent alerts) lapse with no new record, so
    # every resident is re-decided daily (docs/tiers.md); a deployment need not add a cron line.
    register(Job("tiers.sweep", dt.timedelta(days=1), _tiers_sweep))


def _care_day(database: Database, now: dt.datetime) -> Any:
    from yiyang.care.day import run_care_day

    return run_care_day(database, now)


def _orders_sweep(database: Database, now: dt.datetime) -> Any:
    from yiyang.care.orders.service import current_catalogue, sweep_offers

    with database.unit_of_work() as session:
        return sweep_offers(session, now, current_catalogue())


def _timebank_expire(database: Database, now: dt.datetime) -> Any:
    from yiyang.timebank.service import expire

    with database.unit_of_work() as session:
        return expire(session, now)


def _tiers_sweep(database: Database, now: dt.datetime) -> Any:
    from yiyang.tiers.service import sweep_tiers

    with database.unit_of_work() as session:
        return sweep_tiers(session, now=now).as_json()


def _broker_pending(database: Database, now: dt.datetime) -> Any:
    from yiyang.devices.broker import retry_pending

    with database.unit_of_work() as session:
        return retry_pending(session, now)


class Scheduler:
    """Runs each registered job when its interval has passed. ``run_due`` is one pass (tests
    call it with a fake ``now``); ``run`` loops until ``stop`` is set, each job on a thread of its
    own: the care day takes tens of seconds for a district and must not hold up the alert jobs
    that send an SOS notice every few seconds."""

    def __init__(
        self, database: Database, jobs: list[Job] | None = None, clock: Callable[[], dt.datetime] = utcnow
    ) -> None:
        self.database = database
        self.jobs = jobs if jobs is not None else registered()
        self.clock = clock
        self._next: dict[str, dt.datetime] = {}
        self.results: dict[str, Any] = {}
        self.failures: dict[str, int] = {}

    def run_due(self, now: dt.datetime | None = None) -> list[str]:
        now = now or self.clock()
        return [job.name for job in self.jobs if self._run_if_due(job, now)]

    def _run_if_due(self, job: Job, now: dt.datetime) -> bool:
        if self._next.get(job.name, now) > now:
            return False
        self._next[job.name] = now + job.every
        try:
            self.results[job.name] = job.run(self.database, now)
        except Exception:  # noqa: BLE001 - one failing job must not stop the others
            self._next[job.name] = now + min(job.every, RETRY_AFTER)
            self.failures[job.name] = self.failures.get(job.name, 0) + 1
            log.exception("job %s failed", job.name)
        return True

    def run(self, stop: threading.Event, tick: float = 1.0) -> None:
        log.info("running jobs: %s", ", ".join(job.name for job in self.jobs))
        loops = [
            threading.Thread(
                target=self._loop, args=(job, stop, tick), name=f"yiyang-job-{job.name}", daemon=True
            )
            for job in self.jobs
        ]
        for loop in loops:
            loop.start()
        while not stop.wait(tick):  # a timed wait: the worker's signal handlers run meanwhile
            pass
        for loop in loops:
            loop.join()

    def _loop(self, job: Job, stop: threading.Event, tick: float) -> None:
        while not stop.is_set():
            started = time.monotonic()
            self._run_if_due(job, self.clock())
            stop.wait(max(0.0, tick - (time.monotonic() - started)))

    def start(self) -> tuple[threading.Thread, threading.Event]:
        """Run on a daemon thread (``serve --jobs``); set the returned event to stop it."""
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop,), name="yiyang-jobs", daemon=True)
        thread.start()
        return thread, stop


def worker_command() -> None:
    """定时任务 Run the timed jobs until stopped: alert sweep, escalation and deliveries; care day; order sweep; time-bank expiry; broker retries."""
    import signal

    from yiyang.migrate import open_database

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    database = open_database()
    install_jobs()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        Scheduler(database).run(stop)
    finally:
        database.dispose()
