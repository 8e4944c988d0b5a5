"""`enpire up` end to end with stand-in nodes: signals forwarded, logs kept, no process left behind,
also when the supervisor itself is SIGKILLed (children get PR_SET_PDEATHSIG)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.enpire_bringup.procs import new_token, pids_with_token, wait_no_pids

CHILD = str(Path(__file__).parents[1] / 'enpire_common' / 'child.py')


def bringup(tmp_path, token) -> Path:
    data = {
        'name': 'standins',
        'env': {'ENPIRE_TEST_TOKEN': token},
        'cells': {'count': 2, 'nodes': [
            {'name': 'server', 'cmd': [sys.executable, CHILD, 'serve', '--grandchild'], 'ros_args': False,
             'ready': {'log': 'node ready'}},
            {'name': 'client', 'cmd': [sys.executable, CHILD, 'serve'], 'ros_args': False,
             'ready': {'log': 'node ready'}, 'after': ['server']},
        ]},
    }
    path = tmp_path / 'standins.yaml'
    path.write_text(yaml.safe_dump(data))
    return path


def node_pids(token) -> list[int]:
    found = []
    for pid in pids_with_token(token):
        try:
            if b'child.py' in Path(f'/proc/{pid}/cmdline').read_bytes():
                found.append(pid)
        except OSError:
            pass
    return found


def start_up(tmp_path, token, *extra):
    out = open(tmp_path / 'up.out', 'w')
    argv = [sys.executable, '-m', 'enpire_bringup.cli', 'up', str(bringup(tmp_path, token)),
            '--log-dir', str(tmp_path / 'logs'), *extra]
    return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def wait_text(path: Path, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text() if path.exists() else ''
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f'{text!r} not in {path} after {timeout} s:\n{content[-3000:]}')


def test_up_forwards_sigint_and_leaves_nothing(tmp_path):
    token = new_token()
    up = start_up(tmp_path, token)
    try:
        wait_text(tmp_path / 'up.out', 'all 4 processes ready')
        assert len(pids_with_token(token)) == 6            # 4 nodes, 2 grandchildren
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    out = (tmp_path / 'up.out').read_text()
    assert '[cell_1.client] node ready' in out and '[cell_0.server] got SIGINT' in out
    for label in ('cell_0.server', 'cell_0.client', 'cell_1.server', 'cell_1.client'):
        assert 'got SIGINT' in (tmp_path / 'logs' / f'{label}.log').read_text()
    assert wait_no_pids(token) == []


def test_up_sigterm_and_print(tmp_path):
    token = new_token()
    printed = subprocess.run([sys.executable, '-m', 'enpire_bringup.up', str(bringup(tmp_path, token)),
                              '--print', '--cells', '3'], capture_output=True, text=True, timeout=30)
    assert printed.returncode == 0 and len(printed.stdout.splitlines()) == 6
    up = start_up(tmp_path, token, '--quiet', '--only', 'cell_0.*')
    try:
        out = wait_text(tmp_path / 'up.out', 'all 2 processes ready')
        assert '[cell_0.server] node ready' not in out      # --quiet: node output only in the logs
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    assert 'got SIGTERM' in (tmp_path / 'logs' / 'cell_0.server.log').read_text()
    assert wait_no_pids(token) == []


def test_killed_supervisor_takes_its_nodes_along(tmp_path):
    token = new_token()
    up = start_up(tmp_path, token)
    try:
        wait_text(tmp_path / 'up.out', 'all 4 processes ready')
        up.kill()                                           # SIGKILL: no chance to forward anything
        up.wait(30)
        # the nodes get SIGTERM from the kernel (PR_SET_PDEATHSIG) and exit; what they started is left to
        # them (here: grandchildren in the node's group, which a real node would stop itself)
        deadline = time.monotonic() + 30
        while node_pids(token) and time.monotonic() < deadline:
            time.sleep(0.05)
        nodes_left = node_pids(token)
        assert nodes_left == []
    finally:
        for pid in pids_with_token(token):                 # clean the grandchildren of this test
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert wait_no_pids(token) == []
