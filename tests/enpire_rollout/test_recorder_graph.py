"""The recorder node on a real graph: one bag per trial on start / split / stop, every topic (CameraInfo
included) in it, zstd chunks, readable by rosbags and by mcap-ros2-support, and a SIGKILLed recorder's bag
salvaged by the mcap reader."""
from __future__ import annotations

import itertools
import json
import threading
import time

from enpire_common import names
from mcap.records import Chunk
from mcap.stream_reader import StreamReader

from enpire_rollout.trial_bag import (
    METADATA_TOPIC,
    bag_custom_data,
    list_trials,
    recover_unfinished,
    typestore,
)
from tests.enpire_rollout.third_party_readers import check_bag

CELL = 'cell_0'


def start_recorder(node_processes, flush_period_s=0.5):
    return node_processes.start('recorder', [
        '-m', 'enpire_rollout.recorder_node', '--ros-args', '-r', f'__ns:=/{CELL}',
        '-p', 'cameras:=[top]', '-p', 'record_camera_period_s:=0.0',
        '-p', f'flush_period_s:={flush_period_s}', '-p', 'settle_timeout_wall_s:=10.0'])


class CellTraffic:
    """A cell's topics from the test node: states (step n stamped n * 0.1 s), one camera with its
    CameraInfo and homography (sensor-data QoS), commands, trial events, verdicts, /tf_static."""

    def __init__(self, ros_node):
        from geometry_msgs.msg import TransformStamped
        from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image
        from tf2_msgs.msg import TFMessage

        from enpire_interfaces.msg import CellState, Command, FusedVerdict, TableHomography, TrialEvent

        node = ros_node.node
        ns = f'/{CELL}/'
        self.types = (CellState, Command, FusedVerdict, TableHomography, TrialEvent, Image, CameraInfo)
        self.state = node.create_publisher(CellState, ns + names.CELL_STATE, 10)
        self.command = node.create_publisher(Command, ns + names.CELL_COMMAND, 10)
        self.events = node.create_publisher(TrialEvent, ns + names.TRIAL_EVENTS, 100)
        self.verdicts = node.create_publisher(FusedVerdict, ns + names.TRIAL_VERDICTS, 100)
        self.image = node.create_publisher(Image, ns + names.camera_image('top'), qos_profile_sensor_data)
        self.info = node.create_publisher(CameraInfo, ns + names.camera_info('top'), qos_profile_sensor_data)
        self.hom = node.create_publisher(TableHomography, ns + names.camera_homography('top'),
                                         qos_profile_sensor_data)
        self.tf = node.create_publisher(TFMessage, names.TF_STATIC,
                                        QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        transform = TransformStamped()
        transform.header.frame_id, transform.child_frame_id = 'table', 'top_optical_frame'
        self.tf.publish(TFMessage(transforms=[transform]))
        self.step = 0
        self.events_sent = 0
        self._stop = threading.Event()
        self._thread = None

    def stamp(self, step):
        from builtin_interfaces.msg import Time
        return Time(sec=step // 10, nanosec=(step % 10) * 100_000_000)

    def publish_step(self):
        CellState, Command, _, TableHomography, _, Image, CameraInfo = self.types
        stamp = self.stamp(self.step)
        state = CellState(step=self.step)
        state.header.stamp = stamp
        self.state.publish(state)
        command = Command(values=[float(self.step)])
        command.header.stamp = stamp
        self.command.publish(command)
        image = Image(height=8, width=8, encoding='rgb8', step=24, data=bytes([self.step % 256]) * 192)
        image.header.stamp, image.header.frame_id = stamp, 'top_optical_frame'
        info = CameraInfo(width=8, height=8)
        info.header = image.header
        hom = TableHomography(table_to_image=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0])
        hom.header = image.header
        self.image.publish(image)
        self.info.publish(info)
        self.hom.publish(hom)
        self.step += 1

    def event(self, name):
        _, _, _, _, TrialEvent, _, _ = self.types
        msg = TrialEvent(trial_id='t', event=name)
        msg.header.stamp = self.stamp(self.step)
        self.events.publish(msg)
        self.events_sent += 1

    def run(self, period_s=0.01):
        def loop():
            while not self._stop.wait(period_s):
                self.publish_step()
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def clients(ros_node):
    from rclpy.qos import DurabilityPolicy, QoSProfile

    from enpire_interfaces.msg import BagClosed
    from enpire_interfaces.srv import SplitRecording, StartRecording, StopRecording
    node = ros_node.node
    ros_node.closed = []
    node.create_subscription(BagClosed, f'/{CELL}/{names.RECORDER_CLOSED}', ros_node.closed.append,
                             QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    made = {'start': node.create_client(StartRecording, f'/{CELL}/{names.RECORDER_START}'),
            'split': node.create_client(SplitRecording, f'/{CELL}/{names.RECORDER_SPLIT}'),
            'stop': node.create_client(StopRecording, f'/{CELL}/{names.RECORDER_STOP}')}
    for client in made.values():
        assert client.wait_for_service(timeout_sec=60.0), 'recorder services did not come up'
    return made


def call(ros_node, client, request, timeout=60.0):
    return ros_node.wait_future(client.call_async(request), timeout, 'recorder answer')


def start(ros_node, client, request, timeout=60.0):
    """A start re-sent while unanswered, as the trial server sends it (a fresh recorder can lose it)."""
    return ros_node.call(client, request, timeout, 'recorder answer')


def start_request(trial_id, bag_dir, **metadata):
    from enpire_interfaces.srv import StartRecording
    return StartRecording.Request(trial_id=trial_id, bag_dir=str(bag_dir),
                                  metadata_json=json.dumps({'trial_id': trial_id, 'seed': 3, **metadata}))


def stop_request(traffic, status='finished'):
    from enpire_interfaces.msg import RecordingMark
    from enpire_interfaces.srv import StopRecording
    last = traffic.stamp(traffic.step - 1)
    return StopRecording.Request(status=status, summary_json=json.dumps({'success': True}), marks=[
        RecordingMark(topic=names.CELL_STATE, stamp=last),
        RecordingMark(topic=names.CELL_COMMAND, stamp=last),
        RecordingMark(topic=names.TRIAL_EVENTS, count=traffic.events_sent)])


def bag_steps(bag) -> dict[str, list[int]]:
    from rosbags.rosbag2 import Reader
    store = typestore()
    out: dict[str, list] = {}
    with Reader(bag) as reader:
        for conn, _t, raw in reader.messages():
            out.setdefault(conn.topic, [])
            if conn.topic.endswith('/' + names.CELL_STATE):
                out[conn.topic].append(store.deserialize_cdr(raw, conn.msgtype).step)
            else:
                out[conn.topic].append(None)
    return out


def test_start_split_stop_writes_one_complete_bag_per_trial(node_processes, ros_node, tmp_path):
    start_recorder(node_processes)
    traffic = CellTraffic(ros_node)
    services = clients(ros_node)
    bags = tmp_path / 'bags'
    traffic.run()
    try:
        ros_node.wait_for(lambda: traffic.step > 20, 30.0, 'traffic')
        first = start(ros_node, services['start'], start_request('trial_a', bags))
        assert first.ok, first.error
        again = start(ros_node, services['start'], start_request('trial_x', bags))
        assert not again.ok and 'open' in again.error             # one bag at a time, with a reason
        traffic.event('started')
        ros_node.wait_for(lambda: traffic.step > 60, 30.0, 'traffic')
        from enpire_interfaces.srv import SplitRecording
        split = call(ros_node, services['split'], SplitRecording.Request(
            status='finished', summary_json='{}', trial_id='trial_b', bag_dir=str(bags),
            metadata_json=json.dumps({'trial_id': 'trial_b'})))
        assert split.ok, split.error
        assert split.closed_bag_path == first.bag_path and split.bag_path.endswith('trial_b')
        traffic.events_sent = 0
        traffic.event('started')
        traffic.event('finished')
        ros_node.wait_for(lambda: traffic.step > 100, 30.0, 'traffic')
    finally:
        traffic.stop()
    stop = call(ros_node, services['stop'], stop_request(traffic))
    assert stop.ok and stop.bag_path == split.bag_path, stop.error
    late = call(ros_node, services['stop'], stop_request(traffic))
    assert not late.ok and late.error                             # nothing open: a refusal with a reason
    ros_node.wait_for(lambda: len(ros_node.closed) == 2, 60.0, 'both bags announced closed')
    closed = {c.trial_id: c for c in ros_node.closed}
    assert closed['trial_a'].bag_path == first.bag_path and closed['trial_b'].bag_path == stop.bag_path
    assert closed['trial_b'].status == 'finished' and list(closed['trial_b'].missing) == []
    assert closed['trial_b'].messages > 40 and closed['trial_b'].recorder_cpu_s > 0

    a, b = bags / 'trial_a', bags / 'trial_b'
    assert [t['trial_id'] for t in list_trials(bags)] == ['trial_a', 'trial_b']
    steps_a, steps_b = bag_steps(a), bag_steps(b)
    state = f'/{CELL}/{names.CELL_STATE}'
    # No gap and no overlap at the split; the stop waited for the last state sent.
    assert steps_a[state] and steps_b[state][-1] == traffic.step - 1
    assert steps_a[state] + steps_b[state] == list(range(steps_a[state][0], traffic.step))
    for bag in (a, b):
        counts = check_bag(bag)       # mcap (CRCs, every message decoded by mcap-ros2-support), rosbags
        for topic in (state, f'/{CELL}/{names.CELL_COMMAND}', f'/{CELL}/{names.TRIAL_EVENTS}',
                      f'/{CELL}/{names.camera_image("top")}', f'/{CELL}/{names.camera_info("top")}',
                      f'/{CELL}/{names.camera_homography("top")}', names.TF_STATIC, METADATA_TOPIC):
            assert counts[topic] >= 1, (bag.name, topic, counts)
        with open(bag / f'{bag.name}.mcap', 'rb') as f:
            chunks = [r for r in StreamReader(f, emit_chunks=True).records if isinstance(r, Chunk)]
        assert chunks and {c.compression for c in chunks} == {'zstd'}
    assert bag_custom_data(b)['enpire.status'] == 'finished'
    summary = json.loads(bag_custom_data(b)['enpire.trial'])['summary']
    assert summary['success'] is True and summary['recorder_cpu_s'] > 0
    assert bag_steps(b)[f'/{CELL}/{names.TRIAL_EVENTS}'] == [None, None]


def test_a_sigkilled_recorders_bag_is_salvaged_by_the_mcap_reader(node_processes, ros_node, tmp_path):
    recorder = start_recorder(node_processes, flush_period_s=0.1)
    traffic = CellTraffic(ros_node)
    services = clients(ros_node)
    bags = tmp_path / 'bags'
    traffic.run()
    try:
        started = start(ros_node, services['start'], start_request('trial_k', bags))
        assert started.ok, started.error
        begin = traffic.step
        ros_node.wait_for(lambda: traffic.step > begin + 80, 30.0, 'traffic')
        time.sleep(0.5)                   # a few flush periods: what came before is on disk
        node_processes.kill(recorder)
    finally:
        traffic.stop()
    bag = bags / 'trial_k'
    assert not (bag / 'metadata.yaml').exists() and (bags / '.journal' / 'trial_k.json').exists()
    recovered = recover_unfinished(bags)
    assert [r['trial_id'] for r in recovered] == ['trial_k']
    assert list_trials(bags)[-1]['status'] == 'aborted'
    assert bag_custom_data(bag)['enpire.status'] == 'aborted'
    counts = check_bag(bag)
    state = f'/{CELL}/{names.CELL_STATE}'
    assert counts[state] >= 40 and counts[METADATA_TOPIC] == 1 and counts[f'/{CELL}/cameras/top/camera_info']
    steps = bag_steps(bag)[state]
    assert steps == list(range(steps[0], steps[0] + len(steps)))      # nothing lost before the last flush
    assert recover_unfinished(bags) == []


def test_on_sim_time_a_bag_starts_on_the_cells_clock_and_never_before_it(node_processes, ros_node, tmp_path):
    """A start before the recorder heard the cell's clock is refused with that reason (no bag at time 0);
    once the clock runs, the bag's metadata is logged at the cell's time."""
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock

    from enpire_interfaces.srv import StopRecording

    node_processes.start('recorder', [
        '-m', 'enpire_rollout.recorder_node', '--ros-args', '-r', f'__ns:=/{CELL}',
        '-r', f'/clock:=/{CELL}/clock', '-p', 'use_sim_time:=true', '-p', 'cameras:=[top]',
        '-p', 'start_wait_wall_s:=2.0'])
    services = clients(ros_node)
    bags = tmp_path / 'bags'
    early = start(ros_node, services['start'], start_request('trial_early', bags))
    assert not early.ok and early.error == ("RuntimeError: not ready to record after 2.0 s (wall), still "
                                            "missing: the cell's clock (not heard yet)")
    assert not (bags / 'trial_early').exists()

    clock = ros_node.node.create_publisher(Clock, f'/{CELL}/clock', 10)
    timer = ros_node.node.create_timer(0.05, lambda: clock.publish(Clock(clock=Time(sec=5000))))

    tries = itertools.count()

    def start_on_time():     # each try a new request (a copy of a refused one gets the same refusal)
        answer = start(ros_node, services['start'], start_request('trial_on_time', bags, attempt=next(tries)))
        return answer if answer.ok else None
    try:
        started = ros_node.wait_for(start_on_time, 120.0, 'a start once the recorder hears the clock')
        stop = call(ros_node, services['stop'], StopRecording.Request(status='finished', summary_json='{}'))
        assert stop.ok and stop.bag_path == started.bag_path, stop.error
        ros_node.wait_for(lambda: ros_node.closed, 60.0, 'the bag announced closed')
    finally:
        timer.cancel()
    metadata_times = [t for c, t in _log_times(started.bag_path) if c == METADATA_TOPIC]
    assert metadata_times == [5000 * 1_000_000_000]


def _log_times(bag) -> list[tuple[str, int]]:
    from rosbags.rosbag2 import Reader
    with Reader(bag) as reader:
        return [(conn.topic, t) for conn, t, _raw in reader.messages()]


def test_a_restarted_recorder_answers_the_client_that_saw_it_die(node_processes, ros_node, tmp_path):
    """The recorder SIGKILLed and started again beside the same client: its first start is answered
    (sent again while unanswered; the client still sees the dead recorder, and a request it wrote before
    the new one matched never arrives: without the copies 7 of 7 went unanswered for 40 s), and each
    copy of a start gets the first one's answer, never a second bag."""
    traffic = CellTraffic(ros_node)
    bags = tmp_path / 'bags'
    traffic.run()
    try:
        recorder = start_recorder(node_processes)
        services = clients(ros_node)
        for round_ in range(3):
            request = start_request(f'trial_{round_}', bags)
            started = start(ros_node, services['start'], request, timeout=90.0)
            assert started.ok, started.error
            copy = call(ros_node, services['start'], request)
            assert copy.ok and copy.bag_path == started.bag_path, copy.error
            node_processes.kill(recorder)
            recorder = start_recorder(node_processes)
        late_copy = start(ros_node, services['start'], start_request('trial_2', bags), timeout=90.0)
    finally:
        traffic.stop()
    assert late_copy.ok is False and 'exists' in late_copy.error      # a new recorder: a new request
    assert sorted(p.name for p in bags.iterdir() if not p.name.startswith('.')) == \
        ['trial_0', 'trial_1', 'trial_2', 'trials.jsonl']
