"""The collector while :meth:`indexer.pipeline.Indexer.run` runs (``_heap_frozen``): the start-up
heap frozen unless the process froze its own, young passes spaced out, and both put back as
they were when the run returns, raises or is nested in another."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from indexer.pipeline import RUN_GC_THRESHOLD, _heap_frozen


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    frozen = gc.get_freeze_count()
    yield
    gc.set_threshold(*thresholds)
    if not frozen:
        gc.unfreeze()


def test_young_passes_spaced_out_during_a_run_and_put_back() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    with _heap_frozen():
        assert gc.get_threshold() == (RUN_GC_THRESHOLD, 10, 10)
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def _failing_nested_run() -> None:
    with _heap_frozen():
        with _heap_frozen():  # a run inside another's: leaves the outer one's settings
            assert gc.get_threshold() == (RUN_GC_THRESHOLD, 10, 10)
        assert gc.get_threshold() == (RUN_GC_THRESHOLD, 10, 10)
        assert gc.get_freeze_count() > 0
        raise RuntimeError("batch failed")


def test_put_back_when_the_run_raises_and_when_nested() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    with pytest.raises(RuntimeError):
        _failing_nested_run()
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_a_higher_threshold_of_the_process_is_kept() -> None:
    gc.set_threshold(RUN_GC_THRESHOLD * 2, 5, 5)
    with _heap_frozen():
        assert gc.get_threshold() == (RUN_GC_THRESHOLD * 2, 5, 5)
    assert gc.get_threshold() == (RUN_GC_THRESHOLD * 2, 5, 5)


def test_a_process_that_froze_its_heap_keeps_it_frozen() -> None:
    gc.freeze()
    frozen = gc.get_freeze_count()
    with _heap_frozen():
        assert gc.get_freeze_count() >= frozen
    assert gc.get_freeze_count() >= frozen > 0
