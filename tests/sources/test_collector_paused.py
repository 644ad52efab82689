"""The import pauses Python's cyclic collector over a run and always restores it."""

from __future__ import annotations

import gc

import pytest

from yiyang.sources.service import collector_paused


def test_collector_is_paused_over_a_run_and_enabled_again_after_it() -> None:
    # given the collector running
    assert gc.isenabled()
    # when a run imports, then it is paused; after the run it runs again
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_failing_run_still_enables_the_collector_again() -> None:
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("run failed")
    assert gc.isenabled()


def test_a_collector_the_caller_paused_stays_paused() -> None:
    # given a caller that paused the collector itself
    gc.disable()
    try:
        with collector_paused():
            pass
        # then the import leaves it as the caller set it
        assert not gc.isenabled()
    finally:
        gc.enable()
