"""The recorder's writing side without a graph: what goes into a bag, in which bag, and when it closes."""
from __future__ import annotations

import pytest
from builtin_interfaces.msg import Time
from enpire_common import names
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import CameraInfo, Image

from enpire_interfaces.msg import CameraVerdict, CellState, FusedVerdict, GroundTruth
from enpire_rollout.recording import BagRecorder, Mark, RecorderConfig, _placement
from enpire_rollout.trial_bag import bag_cdr, typestore


def stamped(msg, step: int, frame_id: str = 'top_optical_frame'):
    """The message as a peer puts it on the wire (bag_cdr: no padding after an empty sequence)."""
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(step * 100_000_000, 10**9)
    msg.header.frame_id = frame_id
    return bag_cdr(msg) if isinstance(msg, (CellState, GroundTruth)) else serialize_message(msg)


def bag_topics(path) -> dict[str, list]:
    store = typestore()
    out: dict[str, list] = {}
    with Reader(path) as reader:
        for conn, _t, raw in reader.messages():
            out.setdefault(conn.topic, []).append(store.deserialize_cdr(raw, conn.msgtype))
    return out


@pytest.fixture
def recorder():
    config = RecorderConfig(cameras=['top'], record_camera_period_s=1.0, flush_period_s=0.05)
    rec = BagRecorder('cell_0', config)
    yield rec
    rec.shutdown()


def test_the_placement_step_is_read_from_the_bytes_whatever_the_frame_id():
    for frame_id in ('', 'a', 'table', 'a_longer_frame_id_xyz'):
        for step in (0, 1, 7, 2**40):
            truth = GroundTruth(step=step, task_state=[1.0, 2.0])
            assert _placement(stamped(truth, 3, frame_id)) == (step == 0), (frame_id, step)
            truth.header.frame_id = frame_id       # rclpy's own bytes too
            assert _placement(serialize_message(truth)) == (step == 0), (frame_id, step)


def test_frames_at_the_camera_rate_the_judged_one_kept_and_camera_info_on_change(recorder, tmp_path):
    assert recorder.start('t1', str(tmp_path), {'seed': 1}, 0).result(timeout=10).endswith('t1')
    for step in range(25):                     # 2.5 s at 10 Hz: frames at 0, 1.0, 2.0 s kept by the rate
        recorder.offer(names.CELL_STATE, stamped(CellState(step=step), step), step)
        recorder.offer(names.camera_image('top'), stamped(Image(height=1, width=1, encoding='rgb8', step=3,
                                                                 data=bytes(3)), step), step)
        info = CameraInfo(width=96 if step < 20 else 128, height=96)          # the intrinsics change once
        recorder.offer(names.camera_info('top'), stamped(info, step), step)
        truth = GroundTruth(step=0 if step < 3 else step, task_state=[float(step)])
        recorder.offer(names.GROUND_TRUTH, stamped(truth, step, 'table'), step)
    judged = stamped(FusedVerdict(task='pusht', cameras=[CameraVerdict(
        camera='top', frame_stamp=Time(sec=1, nanosec=300_000_000))]), 13)
    recorder.offer(names.TRIAL_VERDICTS, judged, 30)
    path, closed = recorder.stop('finished', {'success': True},
                                 [Mark(names.CELL_STATE, stamp_ns=24 * 100_000_000, count=25),
                                  Mark(names.TRIAL_VERDICTS, count=1)])
    result = closed.result(timeout=10)
    assert result.missing == [] and result.bag_path == path and result.messages > 0
    topics = bag_topics(path)
    frames = [m.header.stamp.sec * 10 + m.header.stamp.nanosec // 100_000_000
              for m in topics['/cell_0/cameras/top/image_raw']]
    assert sorted(frames) == [0, 10, 13, 20]                      # the rate's, and the one the verdict named
    assert [m.width for m in topics['/cell_0/cameras/top/camera_info']] == [96, 128]
    assert [m.step for m in topics['/cell_0/privileged/ground_truth']] == [0, 0, 0]   # placements only
    assert len(topics['/cell_0/cell_state']) == 25


def test_a_stop_waits_for_its_marks_and_says_which_were_not_met(recorder, tmp_path):
    recorder.start('t2', str(tmp_path), {}, 0).result(timeout=10)
    path, closed = recorder.stop('finished', {}, [Mark(names.CELL_STATE, stamp_ns=5 * 100_000_000)],
                                 settle_timeout_s=30.0)
    recorder.offer(names.CELL_STATE, stamped(CellState(step=4), 4), 1)
    assert not closed.done()                         # the state stamped 0.5 s has not arrived
    with pytest.raises(RuntimeError, match='no bag is open'):
        recorder.stop('finished', {}, [])            # stopping twice: refused at once
    recorder.offer(names.CELL_STATE, stamped(CellState(step=5), 5), 2)
    assert closed.result(timeout=10).missing == []
    assert [m.step for m in bag_topics(path)['/cell_0/cell_state']] == [4, 5]

    recorder.start('t3', str(tmp_path), {}, 3).result(timeout=10)
    _, late = recorder.stop('failed', {}, [Mark(names.TRIAL_EVENTS, count=2)], settle_timeout_s=0.2)
    assert late.result(timeout=10).missing == ['trial_events (stamp >= 0, count >= 2)']
    with pytest.raises(FileExistsError):
        recorder.start('t3', str(tmp_path), {}, 4).result(timeout=10)    # one bag per trial id
