"""The verify node against the real simulated cell: success at the goal, failure elsewhere, a camera in
dropout stays an explicit UNCERTAIN while the others decide, malformed requests get clear errors."""
import json
import math
import threading
from pathlib import Path

import cv2
import pytest
from enpire_common import names
from enpire_common.cell_clock import sim_time_ros_args
from enpire_task_pusht import messages as pusht_msgs

from enpire_interfaces.msg import CameraVerdict, CellState, Command, FusedVerdict
from enpire_interfaces.srv import PlaceObjects, Verify

pytestmark = pytest.mark.graph
CELL = 'cell_0'


@pytest.fixture
def cell(node_processes, ros_node, tmp_path):
    # The oblique camera drops every frame from the start. In 'as_fast' pacing the sim's clock advances
    # 0.1 s per step, not with the wall clock, so frame age is not what this test is about.
    node_processes.start('sim', ['-m', 'enpire_sim.sim_cell_node', '--ros-args', '-r', f'__ns:=/{CELL}',
                                 '-p', "camera_faults:='{oblique: {dropout: 1.0}}'", '-p', 'task:=pusht'])
    node_processes.start('verify', ['-m', 'enpire_env.verify_node', '--ros-args', '-r', f'__ns:=/{CELL}',
                                    '-p', 'task:=pusht',
                                    *sim_time_ros_args(CELL),
                                    '-p', f'evidence_dir:={tmp_path}'])
    node = ros_node.node
    place = node.create_client(PlaceObjects, names.cell_name(CELL, names.PLACE_OBJECTS))
    verify = node.create_client(Verify, names.cell_name(CELL, names.VERIFY))
    assert place.wait_for_service(timeout_sec=30), 'no placement service'
    assert verify.wait_for_service(timeout_sec=30), 'no verify service'
    return place, verify


def _place(ros_node, place, block, agent):
    res = ros_node.call(place, pusht_msgs.place_request(block, agent))
    assert res.success, res.message


def _verify(ros_node, verify, **fields):
    return ros_node.call(verify, Verify.Request(**fields))


def _verdict_of(ros_node, verify, block):
    """Verify until the top camera judges a frame showing the placed block (frames arrive async)."""
    def seen():
        res = _verify(ros_node, verify, task='pusht')
        if not res.ok:      # a transient refusal, e.g. the cell's clock not yet heard after start-up
            return None
        top = next((c for c in res.verdict.cameras if c.camera == 'top'), None)
        assert top is not None, f'an answered verification lacks the top camera: {res.verdict}'
        est = top.estimate
        near = len(est) == 3 and math.hypot(est[0] - block[0], est[1] - block[1]) < 8.0
        return res if (res.ok and top.state != CameraVerdict.UNCERTAIN and near) else None
    return ros_node.wait_for(seen, 20, f'a verdict on the frames showing the block at {block}')


def test_verify_node_judges_the_sim_cell(cell, ros_node, tmp_path):
    place, verify = cell
    goal = (256.0, 256.0, math.pi / 4)
    _place(ros_node, place, goal, (80.0, 80.0))
    res = _verdict_of(ros_node, verify, goal)
    v = res.verdict
    assert v.success and v.state == FusedVerdict.SUCCESS and v.score > 0.95, v
    cams = {c.camera: c for c in v.cameras}
    assert list(cams) == ['top', 'oblique', 'wrist']
    assert cams['top'].state == CameraVerdict.SUCCESS
    # The camera in dropout never delivered a frame: explicitly uncertain, the others decided.
    assert cams['oblique'].state == CameraVerdict.UNCERTAIN and cams['oblique'].reason == 'no_frame'

    elsewhere = (150.0, 350.0, 2.0)
    _place(ros_node, place, elsewhere, (400.0, 100.0))
    v = _verdict_of(ros_node, verify, elsewhere).verdict
    assert not v.success and v.state == FusedVerdict.FAILURE and v.score < 0.2, v

    # Evidence on request: a folder with the numbers.
    res = _verify(ros_node, verify, task='pusht', cameras=['top'], save_evidence=True)
    assert res.ok and [c.camera for c in res.verdict.cameras] == ['top']
    evidence = Path(res.verdict.evidence_path)
    assert res.verdict.evidence_path and evidence.is_dir() and evidence.is_relative_to(tmp_path)
    # The annotated frame (boxes and masks drawn over the camera image) and the numbers behind the verdict.
    annotated = cv2.imread(str(evidence / 'top.png'))
    assert annotated is not None and annotated.shape[2] == 3 and annotated.std() > 0
    record = json.loads((evidence / 'verdict.json').read_text())
    assert record['verdict']['state'] == res.verdict.state == FusedVerdict.FAILURE
    assert record['verdict']['success'] is False
    assert record['verdict']['score'] == pytest.approx(res.verdict.score)
    assert [c['camera'] for c in record['verdict']['cameras']] == ['top']

    # Malformed requests: a clear error, nothing judged, the node stays up.
    bad = _verify(ros_node, verify, task='fold_laundry')
    assert not bad.ok and 'fold_laundry' in bad.error and not bad.verdict.cameras
    assert 'known tasks: peg_insertion, pusht' in bad.error, bad.error    # from the registry
    bad = _verify(ros_node, verify, task='')
    assert not bad.ok and 'known tasks: peg_insertion, pusht' in bad.error and not bad.verdict.cameras
    bad = _verify(ros_node, verify, task='pusht', cameras=['top', 'thermal'])
    assert not bad.ok and 'thermal' in bad.error
    bad = _verify(ros_node, verify, task='pusht', cameras=['top', 'top'])
    assert not bad.ok and 'duplicate' in bad.error
    assert _verify(ros_node, verify, task='pusht').ok


def test_a_stale_camera_is_explicitly_uncertain_and_the_others_decide(node_processes, ros_node, tmp_path):
    ns = 'cell_stale'
    # The wrist camera freezes on its first frame and keeps re-sending it with that frame's stamp.
    node_processes.start('sim', ['-m', 'enpire_sim.sim_cell_node', '--ros-args', '-r', f'__ns:=/{ns}',
                                 '-p', "camera_faults:='{wrist: {stale: true}}'", '-p', 'task:=pusht'])
    node_processes.start('verify', ['-m', 'enpire_env.verify_node', '--ros-args', '-r', f'__ns:=/{ns}',
                                    '-p', 'task:=pusht',
                                    *sim_time_ros_args(ns),
                                    '-p', f'evidence_dir:={tmp_path}', '-p', 'max_frame_age:=0.5'])
    node = ros_node.node
    place = node.create_client(PlaceObjects, names.cell_name(ns, names.PLACE_OBJECTS))
    verify = node.create_client(Verify, names.cell_name(ns, names.VERIFY))
    cmd = node.create_publisher(Command, names.cell_name(ns, names.CELL_COMMAND), 10)
    states, lock = [], threading.Lock()

    def on_state(msg):
        with lock:
            states.append(msg)
    node.create_subscription(CellState, names.cell_name(ns, names.CELL_STATE), on_state, 50)
    assert place.wait_for_service(timeout_sec=30) and verify.wait_for_service(timeout_sec=30)
    goal = (256.0, 256.0, math.pi / 4)
    _place(ros_node, place, goal, (80.0, 80.0))

    def stale_verdict():
        # Each command is one 0.1 s step of the as-fast cell's clock; the frozen frame ages with it.
        cmd.publish(pusht_msgs.command((80.0, 80.0)))
        res = _verify(ros_node, verify, task='pusht')
        cams = {c.camera: c for c in res.verdict.cameras}
        return res if res.ok and cams['wrist'].reason == 'stale_frame' and cams['top'].state == \
            CameraVerdict.SUCCESS else None

    v = ros_node.wait_for(stale_verdict, 30, 'the wrist camera judged stale').verdict
    cams = {c.camera: c for c in v.cameras}
    assert cams['wrist'].state == CameraVerdict.UNCERTAIN
    assert v.success and v.state == FusedVerdict.SUCCESS, v
    # The verdict is stamped on the cell's clock (the frames' time base), not the verify node's wall clock:
    # a trial bag then orders it right after the frames it judged.
    with lock:
        cell_stamps = [m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for m in states]
    verdict_stamp = v.header.stamp.sec + 1e-9 * v.header.stamp.nanosec
    assert min(abs(verdict_stamp - t) for t in cell_stamps) < 1e-3, (verdict_stamp, cell_stamps[-3:])


def test_the_sim_cell_without_homographies_is_judged_from_its_camera_info_and_tf_static(
        node_processes, ros_node, tmp_path):
    # As a real cell: no table_homography; the fixed cameras' CameraInfo and poses on /tf_static only.
    ns = 'cell_calibrated'
    node_processes.start('sim', ['-m', 'enpire_sim.sim_cell_node', '--ros-args', '-r', f'__ns:=/{ns}',
                                 '-p', 'publish_homography:=false', '-p', 'task:=pusht'])
    node_processes.start('verify', ['-m', 'enpire_env.verify_node', '--ros-args', '-r', f'__ns:=/{ns}',
                                    '-p', 'task:=pusht',
                                    *sim_time_ros_args(ns),
                                    '-p', f'evidence_dir:={tmp_path}'])
    node = ros_node.node
    place = node.create_client(PlaceObjects, names.cell_name(ns, names.PLACE_OBJECTS))
    verify = node.create_client(Verify, names.cell_name(ns, names.VERIFY))
    assert place.wait_for_service(timeout_sec=30) and verify.wait_for_service(timeout_sec=30)
    assert node.count_publishers(names.cell_name(ns, names.camera_homography('top'))) == 0

    for block, success in (((256.0, 256.0, math.pi / 4), True), ((150.0, 350.0, 2.0), False)):
        _place(ros_node, place, block, (80.0, 80.0) if success else (400.0, 100.0))

        def judged(block=block):
            res = _verify(ros_node, verify, task='pusht')
            cams = {c.camera: c for c in res.verdict.cameras}
            fixed = [cams[name] for name in ('top', 'oblique') if name in cams]
            near = len(fixed) == 2 and all(
                len(c.estimate) == 3 and math.hypot(c.estimate[0] - block[0], c.estimate[1] - block[1]) < 8.0
                for c in fixed)
            return res.verdict if res.ok and near and all(c.state != CameraVerdict.UNCERTAIN for c in fixed) \
                else None
        v = ros_node.wait_for(judged, 30, f'the fixed cameras to judge the block at {block}')
        cams = {c.camera: c for c in v.cameras}
        expected = CameraVerdict.SUCCESS if success else CameraVerdict.FAILURE
        assert cams['top'].state == cams['oblique'].state == expected, v
        # The moving wrist camera has no static pose: no mapping, explicitly uncertain.
        assert cams['wrist'].state == CameraVerdict.UNCERTAIN
        assert v.success == success


def test_a_verify_node_for_an_unknown_task_does_not_start(node_processes):
    """The `task` parameter names an installed task; any other stops the node at start-up, saying which
    tasks there are."""
    import time

    def exit_code(proc, timeout=60.0):
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        return proc.poll()

    proc = node_processes.start('verify_unknown', ['-m', 'enpire_env.verify_node', '--ros-args',
                                                   '-r', '__ns:=/cell_unknown', '-p', 'task:=fold_laundry'])
    assert exit_code(proc) not in (None, 0)
    log = node_processes.log('verify_unknown')
    assert 'cannot start' in log and "unknown task 'fold_laundry'" in log, log
    assert 'known tasks: peg_insertion, pusht' in log, log
