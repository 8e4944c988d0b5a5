"""The verify node selects the YOLO detector by parameter (`detector: yolo`, `yolo_weights: <path>`), and a
missing weights file stops it at start-up with a clear message and a non-zero exit (no silent fallback)."""
from __future__ import annotations

import math
import time

import pytest
from enpire_common import names
from enpire_common.cell_clock import sim_time_ros_args
from enpire_task_pusht import messages as pusht_msgs

from enpire_interfaces.srv import PlaceObjects, Verify

pytestmark = pytest.mark.graph
CELL = 'cell_0'


def _verify_node(node_processes, name, params, env=None):
    argv = ['-m', 'enpire_env.verify_node', '--ros-args', '-r', f'__ns:=/{CELL}', *sim_time_ros_args(CELL),
            '-p', 'task:=pusht']
    for p in params:
        argv += ['-p', p]
    return node_processes.start(name, argv, env=env)


def _exit_code(proc, timeout=180.0):   # torch loads and tears down slowly on a loaded machine
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    return proc.poll()


def test_missing_weights_stop_the_node_at_start_up(node_processes, tiny_run, tmp_path):
    missing = tmp_path / 'no_such_dir' / 'best.pt'
    # The parameter wins over the environment: valid weights in ENPIRE_YOLO_WEIGHTS do not rescue it.
    proc = _verify_node(node_processes, 'verify_missing', ['detector:=yolo', f'yolo_weights:={missing}'],
                        env={'ENPIRE_YOLO_WEIGHTS': tiny_run['weights']})
    code = _exit_code(proc)
    log = node_processes.log('verify_missing')
    assert code not in (None, 0), f'the node kept running or exited 0 without weights:\n{log}'
    assert 'cannot start' in log and 'YOLO weights not found' in log and str(missing) in log, log
    assert 'Traceback' not in log, log                      # a message, not a stack trace
    # A file that is not a weights file is an error too.
    junk = tmp_path / 'junk.pt'
    junk.write_text('not a model')
    proc = _verify_node(node_processes, 'verify_junk', ['detector:=yolo', f'yolo_weights:={junk}'])
    assert _exit_code(proc) not in (None, 0), node_processes.log('verify_junk')
    assert 'cannot start' in node_processes.log('verify_junk')


def test_contradicting_backend_and_detector_is_an_error(node_processes):
    proc = _verify_node(node_processes, 'verify_bad', ['backend:=sam_small', 'detector:=yolo'])
    assert _exit_code(proc) not in (None, 0)
    log = node_processes.log('verify_bad')
    assert 'contradicts' in log
    assert log.count('cannot start') == 1 and log.count('FATAL') == 1, log   # one FATAL line, not two


def test_detector_parameter_selects_yolo_with_its_weights(node_processes, ros_node, tiny_run, tmp_path):
    node_processes.start('sim', ['-m', 'enpire_sim.sim_cell_node', '--ros-args', '-r', f'__ns:=/{CELL}',
                                 '-p', 'task:=pusht'])
    # ENPIRE_YOLO_WEIGHTS points nowhere: only the parameter can make this node start.
    proc = _verify_node(node_processes, 'verify', ['detector:=yolo', f"yolo_weights:={tiny_run['weights']}",
                                                   f'evidence_dir:={tmp_path}'],
                        env={'ENPIRE_YOLO_WEIGHTS': str(tmp_path / 'absent.pt')})
    node = ros_node.node
    place = node.create_client(PlaceObjects, names.cell_name(CELL, names.PLACE_OBJECTS))
    verify = node.create_client(Verify, names.cell_name(CELL, names.VERIFY))
    assert place.wait_for_service(timeout_sec=30), 'no placement service'
    assert verify.wait_for_service(timeout_sec=60), f"no verify service:\n{node_processes.log('verify')}"
    assert proc.poll() is None
    log = node_processes.log('verify')
    assert 'backend=yolo' in log and f"yolo_weights={tiny_run['weights']}" in log, log
    req = pusht_msgs.place_request((256.0, 256.0, math.pi / 4), (80.0, 80.0))
    assert ros_node.call(place, req).success

    def answered():
        res = ros_node.call(verify, Verify.Request(task='pusht'))
        judged = [c for c in res.verdict.cameras if c.reason != 'no_frame']
        return res if res.ok and len(judged) == 3 else None
    res = ros_node.wait_for(answered, 30, 'a verdict judged from all three cameras with the YOLO detector')
    # The tiny test weights are barely trained: the plumbing is under test here, not the verdict.
    assert [c.camera for c in res.verdict.cameras] == ['top', 'oblique', 'wrist']
    assert all(c.latency_ms > 0 for c in res.verdict.cameras)
