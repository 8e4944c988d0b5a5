"""run_node, the one `main()` of every node: a signal is a clean stop (exit 0, the node destroyed), a node
that cannot start exits 2 with the reason, a managed node whose autostart fails exits 2, a node with its
own spin ends with that spin's code."""
import signal
import time
from pathlib import Path

import pytest

CHILD = str(Path(__file__).with_name('node_main_child.py'))


def _wait_log(node_processes, name, text, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in node_processes.log(name):
            return
        time.sleep(0.05)
    raise AssertionError(f'{name} never logged {text!r}: {node_processes.log(name)}')


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_a_signal_stops_the_node_cleanly(node_processes, sig):
    proc = node_processes.start('plain', [CHILD, 'plain'])
    _wait_log(node_processes, 'plain', 'spinning')
    proc.send_signal(sig)
    assert node_processes.wait_exit('plain', proc) == 0, node_processes.log('plain')
    assert 'destroyed' in node_processes.log('plain')


def test_a_node_that_cannot_start_exits_2_with_the_reason(node_processes):
    proc = node_processes.start('bad', [CHILD, 'bad_startup'])
    assert proc.wait(timeout=30) == 2
    assert 'cannot start: /nowhere/limits.yaml does not exist' in node_processes.log('bad')


def test_a_failed_autostart_exits_2(node_processes):
    proc = node_processes.start('managed', [CHILD, 'bad_autostart'])
    assert proc.wait(timeout=30) == 2
    log = node_processes.log('managed')
    assert 'max_speed must be positive' in log and 'autostart: trigger_configure failed' in log


def test_a_node_with_its_own_spin_exits_with_its_code(node_processes):
    proc = node_processes.start('own', [CHILD, 'own_spin'])
    assert proc.wait(timeout=30) == 3
    assert 'destroyed' in node_processes.log('own')


def test_a_context_shut_down_by_a_signal_under_the_wait_set_is_a_clean_stop(node_processes):
    proc = node_processes.start('race', [CHILD, 'signal_race'])
    assert proc.wait(timeout=60) == 0, node_processes.log('race')
    assert 'destroyed' in node_processes.log('race')
    other = node_processes.start('rcl', [CHILD, 'rcl_error'])     # with the context up it is a fault
    assert other.wait(timeout=60) == 1
    assert 'a real rcl failure' in node_processes.log('rcl') and 'destroyed' in node_processes.log('rcl')
