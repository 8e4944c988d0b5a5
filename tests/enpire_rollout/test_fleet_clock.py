"""The fleet clock (a real fleet's time for the trials run here) and the fleet client at 32 cells, with the
cells stood in for by `run_one` (no graph)."""
import threading

import pytest
import rclpy

from enpire_rollout.fleet_client import FleetClient, FleetClock, TrialOutcome, TrialRequest
from enpire_rollout.scheduler import Scheduler

TASK = 'pusht'


def test_a_trial_starts_when_its_idea_exists_and_its_cell_is_free():
    clock = FleetClock(['a', 'b'])
    assert clock.place('a', ready_s=0.0, duration_s=30.0) == 30.0
    assert clock.place('a', ready_s=10.0, duration_s=30.0) == 60.0       # waits for the cell
    assert clock.place('b', ready_s=45.0, duration_s=30.0) == 75.0       # waits for the idea
    assert clock.elapsed() == 0.0                                        # nobody waited yet
    clock.waited(60.0)
    assert clock.now() == 60.0 == clock.elapsed()          # the owner's thread reads the team's time


def test_each_caller_keeps_its_own_time_and_the_team_the_latest():
    clock = FleetClock(['a', 'b'])
    seen = {}

    def caller(name, finish):
        seen[name, 'before'] = clock.now()
        clock.waited(finish)
        seen[name, 'after'] = clock.now()

    for name, finish in (('slow', 90.0), ('fast', 20.0)):
        t = threading.Thread(target=caller, args=(name, finish))
        t.start()
        t.join()
    assert seen['fast', 'before'] == 0.0          # a caller that has not waited is at 0, not at the team's
    assert seen['slow', 'after'] == 90.0 and seen['fast', 'after'] == 20.0
    assert clock.now() == 90.0


def test_the_scheduler_hands_out_the_free_cell_that_is_free_earliest_on_the_fleet_clock():
    clock = FleetClock(['a', 'b', 'c'])
    clock.place('a', 0.0, 50.0)
    clock.place('b', 0.0, 10.0)
    clock.place('c', 0.0, 30.0)
    s = Scheduler(['a', 'b', 'c'], clock=clock)
    assert [s.acquire(), s.acquire(), s.acquire()] == ['b', 'c', 'a']


def test_cells_named_twice_are_refused():
    with pytest.raises(ValueError, match='cells repeat'):
        Scheduler(['cell_1', 'cell_1'])


@pytest.fixture
def node():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('fleet_clock_probe', context=context)
    yield node
    node.destroy_node()
    rclpy.shutdown(context=context)


def test_eight_agents_share_32_cells_at_once_and_the_fleet_clock_is_a_parallel_fleets(node, tmp_path):
    cells = [f'cell_{i}' for i in range(32)]
    clock = FleetClock(cells)
    fleet = FleetClient(node, cells, clock=clock)
    all_on_cells = threading.Barrier(32, timeout=30)   # passes only when the 32 cells run trials together
    lock, busy, double_booked = threading.Lock(), set(), []

    def run_one(cell, request):
        with lock:
            if cell in busy:
                double_booked.append(cell)
            busy.add(cell)
        if request.tag == 'first':
            all_on_cells.wait()
        with lock:
            busy.discard(cell)
        # 30 s of cell time per trial, whatever this machine took
        return TrialOutcome(seed=request.seed, cell=cell, accepted=True, attempts_used=1,
                            attempt_scores=[1.0], reset_s=5.0, execute_s=20.0, verify_s=5.0,
                            cell_time_s=30.0, wall_s=0.01)

    fleet.run_one = run_one
    policy = tmp_path / 'p.py'
    policy.write_text('class Policy: pass\n')
    results, agent_times = {}, {}

    def agent(index):
        first = [TrialRequest(task=TASK, policy_path=str(policy), seed=index * 100 + s, tag='first')
                 for s in range(4)]
        results[index] = fleet.run_trials(first)
        second = [TrialRequest(task=TASK, policy_path=str(policy), seed=index * 100 + 50 + s, tag='second')
                  for s in range(4)]
        results[index] += fleet.run_trials(second)
        agent_times[index] = clock.now()

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not double_booked
    assert sorted(o.seed for i in range(8) for o in results[i]) == sorted(
        i * 100 + s for i in range(8) for s in (0, 1, 2, 3, 50, 51, 52, 53))
    report = fleet.report()
    assert report['trials_started'] == 64 and all(c['trials'] == 2 for c in report['cells'].values())
    # 8 agents x 4 trials on 32 cells, twice: a parallel fleet takes two trial lengths, every agent too
    assert agent_times == {i: 60.0 for i in range(8)}
    assert clock.elapsed() == 60.0


def test_a_trial_takes_the_cell_free_latest_by_its_time_leaving_earlier_cells_to_earlier_callers():
    clock = FleetClock(['a', 'b', 'c'])
    clock.place('a', 0.0, 10.0)
    clock.place('b', 0.0, 40.0)
    clock.place('c', 0.0, 90.0)
    s = Scheduler(['a', 'b', 'c'], clock=clock)
    assert s.acquire(ready_s=50.0) == 'b'          # free by 50; 'a' stays for a caller at 10..40
    assert s.acquire(ready_s=5.0) == 'a'           # none free by 5: the earliest
    assert s.acquire(ready_s=5.0) == 'c'
