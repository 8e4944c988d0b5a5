"""A trial bag as readers that are not ours see it: the `mcap` package (CRCs checked, summary and index,
every message decoded by mcap-ros2-support from the schema its channel names), rosbags' AnyReader (types
built from the definitions stored in the bag) and rosbag2's own rules for metadata.yaml (rosbag2_storage
yaml.hpp, version 9: the fields each version requires, QoS profiles as a YAML list, string custom data).
Each check returns per-topic message counts, so the three can be compared."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import yaml
from mcap.reader import make_reader
from mcap.stream_reader import StreamReader
from mcap_ros2.decoder import DecoderFactory
from rosbags.highlevel import AnyReader

RIHS01 = re.compile(r'RIHS01_[0-9a-f]{64}')
QOS_KEYS = {'history', 'depth', 'reliability', 'durability', 'deadline', 'lifespan', 'liveliness',
            'liveliness_lease_duration', 'avoid_ros_namespace_conventions'}


def mcap_file(bag: Path) -> Path:
    files = yaml.safe_load((bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information'][
        'relative_file_paths']
    assert len(files) == 1, files
    return bag / files[0]


def read_with_mcap(bag: Path) -> tuple[Counter, dict[str, str]]:
    """(messages per topic, type hash per topic) from the mcap package; raises on any bad CRC or record."""
    path = mcap_file(bag)
    with open(path, 'rb') as f:          # every record in file order, data and summary CRCs checked
        records = list(StreamReader(f, skip_magic=False, validate_crcs=True).records)
    assert type(records[-1]).__name__ == 'Footer' and records[-1].summary_start > 0, 'no summary'
    counts: Counter = Counter()
    hashes: dict[str, str] = {}
    with open(path, 'rb') as f:
        reader = make_reader(f, validate_crcs=True, decoder_factories=[DecoderFactory()])
        header, summary = reader.get_header(), reader.get_summary()
        assert header.profile == 'ros2', header
        assert summary is not None and summary.statistics is not None and summary.chunk_indexes
        for channel in summary.channels.values():
            schema = summary.schemas[channel.schema_id]
            assert channel.message_encoding == 'cdr' and schema.encoding == 'ros2msg', channel.topic
            assert re.fullmatch(r'[\w]+/msg/[\w]+', schema.name), schema.name
            profiles = yaml.safe_load(channel.metadata['offered_qos_profiles'])   # a string, per the profile
            assert profiles and all(QOS_KEYS <= set(p) for p in profiles), channel.topic
            hashes[channel.topic] = channel.metadata.get('topic_type_hash', '')
        # Through the summary's chunk index, every message decoded by the schema its channel names.
        for _schema, channel, message, decoded in reader.iter_decoded_messages(log_time_order=False):
            assert decoded is not None and message.log_time >= 0
            counts[channel.topic] += 1
        stats = summary.statistics
        assert stats.message_count == sum(counts.values())
        assert {summary.channels[cid].topic: n for cid, n in stats.channel_message_counts.items() if n} \
            == dict(counts)
    return counts, hashes


def read_with_rosbags(bag: Path) -> Counter:
    """Messages per topic, each deserialised by rosbags' AnyReader from the definitions in the bag."""
    counts: Counter = Counter()
    with AnyReader([bag]) as reader:
        for connection, _t, raw in reader.messages():
            reader.deserialize(raw, connection.msgtype)
            counts[connection.topic] += 1
    return counts


def check_rosbag2_metadata(bag: Path) -> tuple[Counter, dict[str, str], dict]:
    """(messages per topic, type hash per topic, the information) of metadata.yaml, checked as rosbag2's
    yaml.hpp decodes version 9: every field it reads present and of its type."""
    info = yaml.safe_load((bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert info['version'] == 9 and info['storage_identifier'] == 'mcap'
    assert isinstance(info['ros_distro'], str) and info['compression_format'] == '' \
        and info['compression_mode'] == ''
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in info['custom_data'].items()), \
        'custom_data is a map of strings'
    counts: Counter = Counter()
    hashes: dict[str, str] = {}
    for entry in info['topics_with_message_count']:
        topic = entry['topic_metadata']
        assert set(topic) == {'name', 'type', 'serialization_format', 'offered_qos_profiles',
                              'type_description_hash'}, topic
        assert topic['serialization_format'] == 'cdr' and RIHS01.fullmatch(topic['type_description_hash'])
        assert isinstance(topic['offered_qos_profiles'], list) and all(
            QOS_KEYS <= set(p) for p in topic['offered_qos_profiles']), topic['name']
        counts[topic['name']] += int(entry['message_count'])
        hashes[topic['name']] = topic['type_description_hash']
    assert info['message_count'] == sum(counts.values())
    assert [f['path'] for f in info['files']] == info['relative_file_paths']
    for f in info['files']:
        assert (bag / f['path']).is_file()
        assert f['message_count'] == info['message_count']
        assert f['starting_time'] == info['starting_time'] and f['duration'] == info['duration']
    with open(mcap_file(bag), 'rb') as f:
        stats = make_reader(f).get_summary().statistics
    assert info['starting_time']['nanoseconds_since_epoch'] == stats.message_start_time
    assert info['duration']['nanoseconds'] == stats.message_end_time - stats.message_start_time
    return Counter({k: v for k, v in counts.items() if v}), hashes, info


def check_bag(bag: str | Path) -> Counter:
    """All three readers agree on every topic's count and type hash; returns the counts."""
    bag = Path(bag)
    by_mcap, mcap_hashes = read_with_mcap(bag)
    by_rosbags = read_with_rosbags(bag)
    by_metadata, hashes, _ = check_rosbag2_metadata(bag)
    assert by_mcap == by_rosbags == by_metadata, (by_mcap, by_rosbags, by_metadata)
    assert mcap_hashes == hashes, 'the MCAP channels carry the type hashes metadata.yaml names'
    return by_mcap
