"""Trial bags: readable by rosbags and the plain mcap reader, and a SIGKILLed recorder loses no
flushed data."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from mcap.reader import make_reader
from rosbags.rosbag2 import Reader

from enpire_rollout.trial_bag import (
    METADATA_TOPIC,
    TrialBag,
    TrialRecordConfig,
    bag_custom_data,
    list_trials,
    read_partial_mcap,
    recover_unfinished,
    typestore,
)
from tests.enpire_rollout.third_party_readers import check_bag, check_rosbag2_metadata

WRITER_SCRIPT = r'''
import sys, time
sys.path.insert(0, {tests!r})
from test_trial_bag import write_some
write_some({root!r}, 'killed_trial', forever=True)
'''


def cell_state_cdr(step: int) -> bytes:
    """A CellState as a cell puts it on the wire: the tool at (step, 2), a 2-vector command, no joints."""
    from builtin_interfaces.msg import Time
    from enpire_task_pusht import messages as pusht_msgs

    from enpire_rollout.trial_bag import bag_cdr

    return bag_cdr(pusht_msgs.cell_state(step, (1.0 * step, 2.0), (0.0, 0.0), (0.0, 0.0),
                                         Time(sec=step, nanosec=0)))


def image(store, step: int):
    t = store.types
    return t['sensor_msgs/msg/Image'](
        header=t['std_msgs/msg/Header'](stamp=t['builtin_interfaces/msg/Time'](sec=step, nanosec=0),
                                        frame_id='top'),
        height=96, width=96, encoding='rgb8', is_bigendian=0, step=96 * 3,
        data=np.full(96 * 96 * 3, step % 255, dtype=np.uint8))


def write_some(root, trial_id, steps=20, forever=False, config=None):
    store = typestore()
    bag = TrialBag(root, trial_id, 'cell_0', {'policy_sha256': 'abc', 'seed': 7},
                   config or TrialRecordConfig(cameras=['top'], flush_period_s=0.05)).open()
    step = 0
    while forever or step < steps:
        stamp = (step + 1) * 10**8
        bag.write_cdr(bag.topic('cell_state'), cell_state_cdr(step), stamp)
        image_cdr = bytes(store.serialize_cdr(image(store, step), 'sensor_msgs/msg/Image'))
        bag.write_camera('top', image_cdr, stamp)
        step += 1
        if forever:
            print(step, flush=True)
            time.sleep(0.01)
    return bag


def test_closed_bag_reads_with_rosbags_and_mcap(tmp_path):
    bag = write_some(tmp_path, 't1')
    path = bag.close('finished', {'success': True})
    with Reader(path) as reader:
        topics = {c.topic: c.msgcount for c in reader.connections}
        assert topics['/cell_0/cell_state'] == 20 and topics['/cell_0/cameras/top/image_raw'] == 20
        meta = [typestore().deserialize_cdr(raw, c.msgtype) for c, _, raw in reader.messages()
                if c.topic == METADATA_TOPIC]
        assert json.loads(meta[0].data)['seed'] == 7
        state = next(typestore().deserialize_cdr(raw, c.msgtype) for c, _, raw in reader.messages()
                     if c.topic == '/cell_0/cell_state')
        assert state.tool_pose.position.y == 2.0 and list(state.commanded) == [0.0, 0.0]
        assert all(c.ext.offered_qos_profiles for c in reader.connections)
    custom = bag_custom_data(path)
    assert custom['enpire.status'] == 'finished'
    assert json.loads(custom['enpire.trial'])['policy_sha256'] == 'abc'
    with open(path / f'{path.name}.mcap', 'rb') as f:
        reader = make_reader(f)
        assert reader.get_header().profile == 'ros2'
        counts = {}
        for _schema, channel, _message in reader.iter_messages():
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
    assert counts['/cell_0/cell_state'] == 20
    assert list_trials(tmp_path)[0]['status'] == 'finished'
    assert not (tmp_path / '.journal' / 't1.json').exists()


def test_camera_rate_limit_and_compression(tmp_path):
    config = TrialRecordConfig(cameras=['top'], camera_period_s=0.35, image_compression='png')
    path = write_some(tmp_path, 't2', steps=20, config=config).close()
    with Reader(path) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        assert counts['/cell_0/cameras/top/image_raw/compressed'] == 5   # every 0.4 s of 2 s
        c, _, raw = next(m for m in reader.messages() if m[0].topic.endswith('compressed'))
        msg = typestore().deserialize_cdr(raw, c.msgtype)
        assert msg.format == 'png' and bytes(msg.data[:4]) == b'\x89PNG'


def test_a_judged_frame_is_kept_between_rate_limited_frames_and_none_twice(tmp_path):
    bag = TrialBag(tmp_path, 't3', 'cell_0', {}, TrialRecordConfig(cameras=['top'], camera_period_s=1.0))
    assert bag.want_camera('top', 10**9)
    assert not bag.want_camera('top', 13 * 10**8)               # inside the period: dropped
    assert bag.want_camera('top', 14 * 10**8, force=True)      # a verdict's frame: kept anyway
    assert not bag.want_camera('top', 14 * 10**8, force=True)  # already in the bag
    assert not bag.want_camera('top', 20 * 10**8)               # the period restarts at the kept frame
    assert bag.want_camera('top', 24 * 10**8)


def test_sigkilled_recorder_leaves_a_readable_bag_recorded_as_aborted(tmp_path):
    tests = str(Path(__file__).parent)
    proc = subprocess.Popen([sys.executable, '-c', WRITER_SCRIPT.format(tests=tests, root=str(tmp_path))],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, 'PYTHONUNBUFFERED': '1'})
    for line in proc.stdout:
        if int(line) >= 60:
            break
    time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    bag = tmp_path / 'killed_trial'
    assert not (bag / 'metadata.yaml').exists() and (tmp_path / '.journal' / 'killed_trial.json').exists()

    # Before any recovery, the plain mcap stream reader reads the flushed chunks.
    count = 0
    with open(bag / 'killed_trial.mcap', 'rb') as f:
        from mcap.stream_reader import StreamReader
        try:
            for record in StreamReader(f, skip_magic=False).records:
                count += type(record).__name__ == 'Message'
        except Exception:  # noqa: BLE001 - the truncated tail
            pass
    channels, messages = read_partial_mcap(bag / 'killed_trial.mcap')
    assert len(messages) >= 60 * 2
    assert count == len(messages)                      # both readers see every flushed message

    # On restart: the orphan becomes a proper bag, annotated and listed as aborted.
    recovered = recover_unfinished(tmp_path)
    assert [r['trial_id'] for r in recovered] == ['killed_trial']
    assert list_trials(tmp_path)[-1]['status'] == 'aborted'
    assert bag_custom_data(bag)['enpire.status'] == 'aborted'
    with Reader(bag) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        assert counts['/cell_0/cell_state'] >= 60 and counts[METADATA_TOPIC] == 1
        steps = [typestore().deserialize_cdr(raw, c.msgtype).step for c, _, raw in reader.messages()
                 if c.topic == '/cell_0/cell_state']
        assert steps == list(range(len(steps)))       # nothing lost before the last flush
    with open(bag / 'killed_trial.mcap', 'rb') as f:
        assert sum(1 for _ in make_reader(f).iter_messages()) == len(messages)
    # Third-party readers read the salvaged bag as a finished one, with the QoS it was recorded with.
    assert sum(check_bag(bag).values()) == len(messages)
    topics = {t['topic_metadata']['name']: t['topic_metadata']
              for t in check_rosbag2_metadata(bag)[2]['topics_with_message_count']}
    assert topics[METADATA_TOPIC]['offered_qos_profiles'][0]['durability'] == 'transient_local'
    assert topics['/cell_0/cameras/top/image_raw']['offered_qos_profiles'][0]['reliability'] == 'best_effort'
    assert recover_unfinished(tmp_path) == []          # recorded once, not twice


def test_chunks_are_zstd_compressed_by_mcap_and_every_reader_reads_the_bag(tmp_path):
    """MCAP's own chunk compression (zstd), so the file stays indexed: the chunk records say `zstd`, and
    the mcap reader (every message decoded by mcap-ros2-support), rosbags and rosbag2's metadata rules agree
    on every topic; the cameras offer the sensor-data QoS, the metadata is latched."""
    from mcap.records import Chunk
    from mcap.stream_reader import StreamReader

    path = write_some(tmp_path, 'z1', steps=40).close('finished')
    with open(path / 'z1.mcap', 'rb') as f:
        chunks = [r for r in StreamReader(f, emit_chunks=True).records if isinstance(r, Chunk)]
    assert chunks and {c.compression for c in chunks} == {'zstd'}
    assert sum(len(c.data) for c in chunks) < sum(c.uncompressed_size for c in chunks) / 4
    counts = check_bag(path)
    assert counts['/cell_0/cell_state'] == 40 and counts['/cell_0/cameras/top/image_raw'] == 40
    topics = {t['topic_metadata']['name']: t['topic_metadata']
              for t in check_rosbag2_metadata(path)[2]['topics_with_message_count']}
    camera = topics['/cell_0/cameras/top/image_raw']['offered_qos_profiles'][0]
    assert (camera['reliability'], camera['durability'], camera['depth']) == ('best_effort', 'volatile', 5)
    assert topics['/cell_0/cameras/top/camera_info']['type'] == 'sensor_msgs/msg/CameraInfo'
    assert topics[METADATA_TOPIC]['offered_qos_profiles'][0]['durability'] == 'transient_local'


def test_header_stamps_are_read_from_the_raw_bytes_of_every_recorded_type():
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from enpire_interfaces.msg import CellState, Command, GroundTruth, SafetyEvent, TableHomography
    from enpire_rollout.trial_core import header_stamp_ns

    for msg_type in (CellState, SafetyEvent, TableHomography, Command, GroundTruth, Image):
        msg = msg_type()
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1_733_000_123, 987_654_321
        msg.header.frame_id = 'wrist'
        assert header_stamp_ns(serialize_message(msg)) == 1_733_000_123_987_654_321, msg_type
    big_endian = b'\x00\x00\x00\x00' + (5).to_bytes(4, 'big') + (7).to_bytes(4, 'big')
    assert header_stamp_ns(big_endian) == 5_000_000_007
    try:
        header_stamp_ns(b'\x00\x01\x00\x00')
    except ValueError as exc:
        assert 'too short' in str(exc)
    else:
        raise AssertionError('a truncated message was read as a stamp')


def test_bag_cdr_of_empty_vectors_reads_where_rmw_serialize_does_not():
    """rclpy's serialize_message pads after an empty float64[] (Fast-CDR) and rosbags refuses the bytes;
    `bag_cdr` writes what the wire carries, read back field for field."""
    import pytest
    from builtin_interfaces.msg import Time
    from enpire_task_pusht import messages as pusht_msgs
    from rclpy.serialization import serialize_message
    from rosbags.serde import SerdeError

    from enpire_interfaces.msg import Command
    from enpire_rollout.trial_bag import bag_cdr

    store = typestore()
    state = pusht_msgs.cell_state(4, (1.5, -0.0), (5e-324, 2.0), (3.0, 4.0), Time(sec=9, nanosec=7))
    with pytest.raises(SerdeError):
        store.deserialize_cdr(serialize_message(state), 'enpire_interfaces/msg/CellState')
    read = store.deserialize_cdr(bag_cdr(state), 'enpire_interfaces/msg/CellState')
    stamp = read.header.stamp
    assert (read.step, read.header.frame_id, stamp.sec, stamp.nanosec) == (4, 'table', 9, 7)
    pose = read.tool_pose
    assert (pose.position.x, pose.position.y, pose.orientation.w) == (1.5, -0.0, 1.0)
    assert read.tool_velocity.linear.x == 5e-324 and list(read.commanded) == [3.0, 4.0]
    assert len(read.joints.position) == 0 and len(read.task_state) == 0
    assert len(store.deserialize_cdr(bag_cdr(Command()), 'enpire_interfaces/msg/Command').values) == 0


def test_metadata_yaml_says_what_the_mcap_serialized_metadata_says(tmp_path):
    """metadata.yaml is the MCAP's rosbag2 metadata one level down, whatever the trial's summary holds
    (long lines the emitter wraps, quotes, newlines, non-ASCII, leading spaces)."""
    awkward = {'note': ' leading space, "quotes", \'single\', a: colon\nnew\n\n  indented ' + 'long ' * 60,
               'name': 'Zürich — 東京', 'empty': '', 'list': ['- dash', '# hash', '']}
    path = write_some(tmp_path, 'y1', steps=3).close('finished', awkward)
    with open(path / 'y1.mcap', 'rb') as f:
        serialized = {m.name: m.metadata for m in make_reader(f).iter_metadata()}['rosbag2']
    in_mcap = yaml.safe_load(serialized['serialized_metadata'])
    in_file = yaml.safe_load((path / 'metadata.yaml').read_text())
    assert in_file == {'rosbag2_bagfile_information': in_mcap}
    assert json.loads(in_file['rosbag2_bagfile_information']['custom_data']['enpire.trial'])['summary'] \
        == awkward
    check_rosbag2_metadata(path)
