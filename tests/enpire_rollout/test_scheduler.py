"""Scheduler core: free cells, budgets, per-cell time accounting, MRU."""
from __future__ import annotations

import threading
import time

from enpire_rollout.scheduler import Budget, Scheduler
from enpire_rollout.trial_outcome import TrialOutcome


def outcome(execute, reset=0.1, verify=0.1):
    return TrialOutcome(execute_s=execute, reset_s=reset, verify_s=verify, wall_s=execute + reset + verify)


def test_cells_are_handed_out_once_and_freed():
    s = Scheduler(['a', 'b'])
    assert {s.acquire(), s.acquire()} == {'a', 'b'}
    assert s.acquire(timeout=0.05) is None
    threading.Timer(0.1, lambda: s.release('b', outcome(1.0))).start()
    assert s.acquire(timeout=30) == 'b'


def test_a_held_cell_waits_for_its_trial_and_is_not_handed_out():
    s = Scheduler(['a'])
    assert s.acquire() == 'a'
    assert not s.hold('a', timeout=0.05)                 # a trial runs on it: no reset meanwhile
    threading.Timer(0.1, lambda: s.release('a', outcome(1.0))).start()
    assert s.hold('a', timeout=30)
    assert s.acquire(timeout=0.05) is None and s.trials_started == 1
    s.release('a')
    assert s.acquire(timeout=30) == 'a'


def test_trial_and_robot_time_budgets():
    s = Scheduler(['a'], Budget(max_trials=2))
    s.release(s.acquire())
    s.release(s.acquire())
    assert s.acquire() is None and 'trial budget' in s.budget_left()
    s = Scheduler(['a'], Budget(max_robot_s=1.0))
    s.release(s.acquire(), outcome(2.0))
    assert s.acquire() is None and 'robot-time' in s.budget_left()


def test_mru_is_execute_share_of_wall_time_averaged_over_cells():
    s = Scheduler(['a', 'b'])
    s.t0 = time.monotonic() - 10.0
    for cell, ex in (('a', 9.0), ('b', 5.0)):
        s.acquire()
        s.release(cell, outcome(ex, 0.5, 0.5))
    s.finish()
    report = s.report()
    assert abs(report['cells']['a']['mru'] - 0.9) < 0.01 and abs(report['mru'] - 0.7) < 0.01
    assert abs(report['cells']['b']['idle_s'] - 4.0) < 0.05


def test_a_cell_that_refused_rests_while_the_others_take_trials():
    s = Scheduler(['a', 'b'])
    assert s.acquire() == 'a'
    s.refused('a', rest_s=0.3)
    assert s.trials_started == 0 and s.accounts['a'].refusals == 1
    assert s.acquire(timeout=0.1) == 'b'                     # 'a' rests: 'b' is handed out
    assert s.acquire(timeout=0.05) is None                   # 'a' still resting, 'b' busy
    assert s.acquire(timeout=30.0) == 'a'                     # back after its rest (the wait wakes for it)
