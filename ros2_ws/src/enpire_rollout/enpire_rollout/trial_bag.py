"""One rosbag2 folder (MCAP storage + metadata.yaml) per trial, written with the `mcap` library (pure).

    bag = TrialBag(bag_root, trial_id, cell='cell_0', metadata={...}, config=TrialRecordConfig(...))
    bag.open(stamp_ns)
    bag.write_cdr(bag.topic('cell_state'), cdr_bytes, log_time_ns)   # raw CDR as it came off the wire
    bag.close(status='finished', summary={...})

The recorder node (recorder_node.py) is the one writer of trial bags on a cell; this module is its disk side.
Chunks are zstd-compressed by MCAP's own chunk compression (the file stays indexed: `ros2 bag info/play`,
rosbags and mcap-ros2-support read it as it is). Nothing lost: the chunk in progress is closed and
flushed every `flush_period_s`, so a recorder killed with SIGKILL leaves a file the mcap stream reader
reads up to its last flushed chunk. A journal entry (`<bag_root>/.journal/<trial_id>.json`) exists while a
trial records; `recover_unfinished(bag_root)` turns every orphan into a proper bag annotated
`status: aborted` and lists it in `<bag_root>/trials.jsonl`. Topic names are absolute (`/<cell>/cell_state`).
"""
from __future__ import annotations

import json
import os
import shutil
import textwrap
import time
from functools import cache, lru_cache
from pathlib import Path

import yaml
from enpire_common import names
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType
from mcap.writer import Writer as McapWriter
from pydantic import BaseModel, Field
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

METADATA_TOPIC = '/trial/metadata'
PRIVILEGED = 'privileged/'     # topics under <cell>/privileged/: simulator truth, for audits, never agents
JOURNAL_DIR = '.journal'
INDEX_FILE = 'trials.jsonl'
CUSTOM_KEY = 'enpire.trial'
CHUNK_SIZE = 2**20             # bytes of messages per chunk before it is compressed and written

_INFINITE = {'sec': 2147483647, 'nsec': 4294967295}     # rosbag2's spelling of an infinite duration


def qos(reliable: bool = True, transient_local: bool = False, depth: int = 10) -> dict:
    """An offered QoS profile as rosbag2 (metadata.yaml version 9, MCAP channel metadata) writes it."""
    return {'history': 'keep_last', 'depth': depth,
            'reliability': 'reliable' if reliable else 'best_effort',
            'durability': 'transient_local' if transient_local else 'volatile',
            'deadline': dict(_INFINITE), 'lifespan': dict(_INFINITE), 'liveliness': 'automatic',
            'liveliness_lease_duration': dict(_INFINITE), 'avoid_ros_namespace_conventions': False}


# rclpy.qos.qos_profile_sensor_data (best effort, volatile, keep last 5): what every camera offers.
SENSOR_DATA = qos(reliable=False, depth=5)


def _interfaces_share() -> Path:
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory('enpire_interfaces'))
    except Exception:  # noqa: BLE001 - source tree fallback (tests outside the workspace)
        return Path(__file__).resolve().parents[2] / 'enpire_interfaces'


@lru_cache(maxsize=1)
def typestore():
    """ROS 2 Kilted standard types plus the project's messages, registered from their .msg text."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for path in sorted((_interfaces_share() / 'msg').glob('*.msg')):
        types.update(get_types_from_msg(path.read_text(), f'enpire_interfaces/msg/{path.stem}'))
    store.register(types)
    return store


_DTYPES = {'double': 'float64', 'float': 'float32', 'int8': 'int8', 'uint8': 'uint8', 'octet': 'uint8',
           'int16': 'int16', 'uint16': 'uint16', 'int32': 'int32', 'uint32': 'uint32', 'int64': 'int64',
           'uint64': 'uint64', 'boolean': 'bool'}


def _to_typestore(store, msg):
    """An rclpy message as the typestore's class of the same type, field by field."""
    import numpy as np
    cls = type(msg)
    typename = f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"
    fields = {}
    for name, kind in msg.get_fields_and_field_types().items():
        value = getattr(msg, name)
        element = kind.removeprefix('sequence<').split(',')[0].split('[')[0].rstrip('>')
        if hasattr(value, 'get_fields_and_field_types'):
            fields[name] = _to_typestore(store, value)
        elif element in _DTYPES and not isinstance(value, (int, float, bool)):
            fields[name] = np.asarray(value, dtype=_DTYPES[element])
        elif isinstance(value, (list, tuple)) and value and hasattr(value[0], 'get_fields_and_field_types'):
            fields[name] = [_to_typestore(store, v) for v in value]
        else:
            fields[name] = list(value) if isinstance(value, (list, tuple)) else value
    return store.types[typename](**fields)


def bag_cdr(msg) -> bytes:
    """A message built in Python, serialised as a bag holds it (what a DDS peer puts on the wire).

    rclpy's `serialize_message` (Fast-CDR's rmw_serialize) pads after an EMPTY sequence of 8-byte values
    even where the next field needs no alignment; the wire and rosbags do not, and rosbags refuses those
    bytes. Messages with vectors that may be empty (CellState.joints, task_state) are written with this."""
    store = typestore()
    cls = type(msg)
    typename = f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"
    return bytes(store.serialize_cdr(_to_typestore(store, msg), typename))


class TrialRecordConfig(BaseModel):
    cameras: list[str] = Field(default_factory=list)
    camera_period_s: float = 0.0          # 0: every frame; else at most one frame per camera per period
    image_compression: str = ''           # '' (raw sensor_msgs/Image) | 'png' | 'jpeg'
    flush_period_s: float = 0.5           # close and flush the MCAP chunk at least this often


def trial_topics(cell: str, cameras: list[str], image_compression: str = '') -> dict[str, tuple[str, dict]]:
    """Absolute topic -> (message type, offered QoS) of everything a trial bag holds."""
    def n(name):
        return names.cell_name(cell, name)
    topics = {
        n(names.CELL_STATE): ('enpire_interfaces/msg/CellState', qos()),
        n(names.POLICY_COMMAND): ('enpire_interfaces/msg/Command', qos()),
        n(names.CELL_COMMAND): ('enpire_interfaces/msg/Command', qos()),
        n(names.SAFETY_EVENTS): ('enpire_interfaces/msg/SafetyEvent', qos(depth=100)),
        n(names.TRIAL_EVENTS): ('enpire_interfaces/msg/TrialEvent', qos(depth=100)),
        # PRIVILEGED (simulated cells only): the exact state of each placement (step 0), the last before
        # the first step being the trial's initial state, for `enpire audit --replay`; never shown to agents.
        n(names.GROUND_TRUTH): ('enpire_interfaces/msg/GroundTruth', qos(depth=1)),
        n('trial/verdicts'): ('enpire_interfaces/msg/FusedVerdict', qos(depth=100)),
        METADATA_TOPIC: ('std_msgs/msg/String', qos(transient_local=True, depth=1)),
        names.TF_STATIC: ('tf2_msgs/msg/TFMessage', qos(transient_local=True, depth=1)),
    }
    for cam in cameras:       # a camera and its companions offer the sensor-data profile
        if image_compression:
            topics[n(names.camera_image(cam)) + '/compressed'] = ('sensor_msgs/msg/CompressedImage',
                                                                  SENSOR_DATA)
        else:
            topics[n(names.camera_image(cam))] = ('sensor_msgs/msg/Image', SENSOR_DATA)
        topics[n(names.camera_homography(cam))] = ('enpire_interfaces/msg/TableHomography', SENSOR_DATA)
        topics[n(names.camera_info(cam))] = ('sensor_msgs/msg/CameraInfo', SENSOR_DATA)
    return topics


@cache
def _schema(msgtype: str) -> tuple[bytes, str]:
    """(ros2msg definition with its dependencies, RIHS01 type hash) of a type, as rosbag2 stores them."""
    store = typestore()
    msgdef, _md5 = store.generate_msgdef(msgtype, ros_version=2)
    return msgdef.encode(), store.hash_rihs01(msgtype)


def _yaml(value) -> str:
    """YAML as rosbag2 reads it, with libyaml's emitter where PyYAML has it (a trial's metadata is large)."""
    return yaml.dump(value, Dumper=getattr(yaml, 'CSafeDumper', yaml.SafeDumper), sort_keys=False)


_QOS_YAML: dict[str, str] = {}      # offered QoS (repr) -> its YAML: a bag's 19 channels share three profiles


def _qos_yaml(offered_qos: list[dict]) -> str:
    key = repr(offered_qos)
    text = _QOS_YAML.get(key)
    if text is None:
        text = _QOS_YAML[key] = _yaml(offered_qos)
    return text


class McapBag:
    """One rosbag2 folder: `<name>/<name>.mcap` (zstd chunks, ros2 profile, channels as rosbag2's MCAP
    storage writes them) and, on close, metadata.yaml (version 9) as `ros2 bag info/play` read it."""

    def __init__(self, path: Path):
        self.path = path
        self.file = path / f'{path.name}.mcap'
        self._stream = None
        self._writer: McapWriter | None = None
        self._schemas: dict[str, int] = {}
        self._topics: dict[int, tuple[str, str, list[dict], str]] = {}    # channel -> topic, type, QoS, hash
        self.counts: dict[int, int] = {}
        self.start_ns = 2**63 - 1
        self.end_ns = 0

    def open(self) -> McapBag:
        self.path.mkdir(parents=True, exist_ok=True)
        self._stream = open(self.file, 'wb')       # noqa: SIM115 - closed by close()
        self._writer = McapWriter(self._stream, chunk_size=CHUNK_SIZE, compression=CompressionType.ZSTD)
        self._writer.start(profile='ros2', library='enpire trial_bag (mcap)')
        return self

    def add_topic(self, topic: str, msgtype: str, offered_qos: list[dict]) -> int:
        msgdef, type_hash = _schema(msgtype)
        if msgtype not in self._schemas:
            self._schemas[msgtype] = self._writer.register_schema(msgtype, 'ros2msg', msgdef)
        metadata = {'offered_qos_profiles': _qos_yaml(offered_qos), 'topic_type_hash': type_hash}
        channel = self._writer.register_channel(topic, 'cdr', self._schemas[msgtype], metadata)
        self._topics[channel] = (topic, msgtype, offered_qos, type_hash)
        self.counts[channel] = 0
        return channel

    def write(self, channel: int, log_time_ns: int, data: bytes) -> None:
        count = self.counts[channel]
        self._writer.add_message(channel, log_time_ns, data, log_time_ns, sequence=count)
        self.counts[channel] = count + 1
        self.start_ns = min(self.start_ns, log_time_ns)
        self.end_ns = max(self.end_ns, log_time_ns)

    def flush(self) -> None:
        """Compress and write the chunk in progress: everything so far survives a kill."""
        self._writer.flush()

    def close(self, custom_data: dict[str, str]) -> None:
        info = _yaml(self._information(custom_data))
        self._writer.add_metadata('rosbag2', {'serialized_metadata': info})
        self._writer.finish()
        self._stream.close()
        tmp = self.path / 'metadata.yaml.tmp'
        # The same YAML one level down (block style: indenting it nests it), not represented twice.
        tmp.write_text('rosbag2_bagfile_information:\n' + textwrap.indent(info, '  '))
        tmp.replace(self.path / 'metadata.yaml')

    def _information(self, custom_data: dict[str, str]) -> dict:
        count = sum(self.counts.values())
        start = self.start_ns if count else 0
        span = {'starting_time': {'nanoseconds_since_epoch': start},
                'duration': {'nanoseconds': max(0, self.end_ns - start) if count else 0}}
        return {
            'version': 9, 'storage_identifier': 'mcap', 'relative_file_paths': [self.file.name],
            **span, 'message_count': count,
            'topics_with_message_count': [
                {'topic_metadata': {'name': topic, 'type': msgtype, 'serialization_format': 'cdr',
                                    'offered_qos_profiles': offered, 'type_description_hash': type_hash},
                 'message_count': self.counts[channel]}
                for channel, (topic, msgtype, offered, type_hash) in self._topics.items()],
            'compression_format': '', 'compression_mode': '',     # compressed inside the MCAP chunks
            'files': [{'path': self.file.name, **span, 'message_count': count}],
            'custom_data': dict(custom_data), 'ros_distro': os.environ.get('ROS_DISTRO') or 'kilted'}

class TrialBag:
    """One trial's bag: opened with the trial's metadata, written with raw CDR, closed with its status."""

    def __init__(self, bag_root: str | Path, trial_id: str, cell: str, metadata: dict,
                 config: TrialRecordConfig | None = None):
        self.root = Path(bag_root)
        self.trial_id = trial_id
        self.cell = cell
        self.metadata = metadata
        self.config = config or TrialRecordConfig()
        self.path = self.root / trial_id
        self.journal = self.root / JOURNAL_DIR / f'{trial_id}.json'
        self.bag: McapBag | None = None
        self.channels: dict[str, int] = {}
        self.msgtypes: dict[str, str] = {}
        self._absolute: dict[str, str] = {}       # relative name -> absolute topic (asked per message)
        self._last_flush = 0.0
        self._last_camera: dict[str, int] = {}
        self.closed = False

    def topic(self, name: str) -> str:
        absolute = self._absolute.get(name)
        if absolute is None:
            absolute = self._absolute[name] = names.cell_name(self.cell, name)
        return absolute

    @property
    def counts(self) -> dict[str, int]:
        """Messages written per topic so far."""
        if self.bag is None:
            return {}
        return {topic: self.bag.counts[channel] for topic, channel in self.channels.items()}

    def open(self, stamp_ns: int | None = None) -> TrialBag:
        """`stamp_ns`: when the trial starts on the recorder's clock (the log time of the metadata)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.journal.parent.mkdir(exist_ok=True)
        self.journal.write_text(json.dumps({'trial_id': self.trial_id, 'bag_path': str(self.path),
                                            'pid': os.getpid(), 'cell': self.cell,
                                            'started': time.time()}))
        self.bag = McapBag(self.path).open()
        for topic, (msgtype, offered) in trial_topics(self.cell, self.config.cameras,
                                                      self.config.image_compression).items():
            self.channels[topic] = self.bag.add_topic(topic, msgtype, [offered])
            self.msgtypes[topic] = msgtype
        store = typestore()
        metadata = store.types['std_msgs/msg/String'](data=json.dumps(self.metadata, default=str))
        self.write_cdr(METADATA_TOPIC, bytes(store.serialize_cdr(metadata, 'std_msgs/msg/String')),
                       time.time_ns() if stamp_ns is None else stamp_ns)
        self.flush()
        return self

    def write_cdr(self, topic: str, data: bytes, stamp_ns: int) -> bool:
        """Raw CDR on an absolute topic the bag holds, logged at `stamp_ns`; False if it holds no such."""
        channel = self.channels.get(topic)
        if self.bag is None or self.closed or channel is None:
            return False
        self.bag.write(channel, int(stamp_ns), data)
        self.maybe_flush()
        return True

    def write_msg(self, topic: str, msg, stamp_ns: int) -> None:
        """A rosbags message object (tools that build bags in Python)."""
        if topic in self.channels:
            self.write_cdr(topic, bytes(typestore().serialize_cdr(msg, self.msgtypes[topic])), stamp_ns)

    def want_camera(self, key: str, stamp_ns: int, force: bool = False) -> bool:
        """Rate limit per camera stream `key` (header stamps); `force`: a frame a verdict was judged on,
        kept whatever the rate. A frame already recorded is not again."""
        last = self._last_camera.get(key)
        if last == stamp_ns or (not force and last is not None
                                and (stamp_ns - last) < self.config.camera_period_s * 1e9):
            return False
        self._last_camera[key] = stamp_ns
        return True

    def write_camera(self, camera: str, image_cdr: bytes, stamp_ns: int, log_time_ns: int | None = None,
                     force: bool = False) -> bool:
        """A camera frame at the camera rate (PNG/JPEG if the bag compresses images)."""
        if not self.want_camera(camera, stamp_ns, force):
            return False
        topic = self.topic(names.camera_image(camera))
        if self.config.image_compression:
            image_cdr = compress_image_cdr(image_cdr, self.config.image_compression)
            topic += '/compressed'
        return self.write_cdr(topic, image_cdr, stamp_ns if log_time_ns is None else log_time_ns)

    def maybe_flush(self) -> None:
        """Flush if the last flush is `flush_period_s` old."""
        if time.monotonic() - self._last_flush >= self.config.flush_period_s:
            self.flush()

    def flush(self) -> None:
        if self.bag is None or self.closed:
            return
        self.bag.flush()
        self._last_flush = time.monotonic()

    def close(self, status: str = 'finished', summary: dict | None = None) -> Path:
        if self.closed or self.bag is None:
            return self.path
        record = {**self.metadata, 'status': status, 'summary': summary or {}}
        self.bag.close({CUSTOM_KEY: json.dumps(record, default=str), 'enpire.status': status})
        self.closed = True
        _append_index(self.root, {'trial_id': self.trial_id, 'status': status, 'bag_path': str(self.path),
                                  'cell': self.cell, 'summary': summary or {}})
        self.journal.unlink(missing_ok=True)
        return self.path


def compress_image_cdr(image_cdr: bytes, fmt: str) -> bytes:
    import cv2
    import numpy as np

    store = typestore()
    img = store.deserialize_cdr(image_cdr, 'sensor_msgs/msg/Image')
    array = np.frombuffer(img.data, dtype=np.uint8).reshape(img.height, img.width, -1)
    if img.encoding == 'rgb8':
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode('.png' if fmt == 'png' else '.jpg', array)
    msg = store.types['sensor_msgs/msg/CompressedImage'](header=img.header, format=fmt,
                                                          data=np.asarray(encoded, dtype=np.uint8).ravel())
    return bytes(store.serialize_cdr(msg, 'sensor_msgs/msg/CompressedImage'))


def _append_index(root: Path, record: dict) -> None:
    with open(root / INDEX_FILE, 'a') as f:
        f.write(json.dumps({**record, 'time': time.time()}, default=str) + '\n')
        f.flush()
        os.fsync(f.fileno())


def list_trials(bag_root: str | Path) -> list[dict]:
    """The index of trials that ended (finished, cancelled, failed, aborted)."""
    index = Path(bag_root) / INDEX_FILE
    if not index.exists():
        return []
    return [json.loads(line) for line in index.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------- salvage
def read_partial_mcap(path: str | Path) -> tuple[dict[int, tuple[str, str, list[dict]]],
                                                  list[tuple[int, int, bytes]]]:
    """Channels {id: (topic, schema name, offered QoS)} and messages [(channel id, log time, data)] of the
    complete chunks of an MCAP file whose writer died: the mcap stream reader over its valid prefix."""
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str, list[dict]]] = {}
    messages: list[tuple[int, int, bytes]] = []
    with open(path, 'rb') as f:
        try:
            for record in StreamReader(f, skip_magic=False, validate_crcs=True).records:
                if isinstance(record, Schema):
                    schemas[record.id] = record.name
                elif isinstance(record, Channel):
                    offered = yaml.safe_load(record.metadata.get('offered_qos_profiles') or '[]') or []
                    channels[record.id] = (record.topic, schemas.get(record.schema_id, ''), offered)
                elif isinstance(record, Message):
                    messages.append((record.channel_id, record.log_time, record.data))
        # The tail a killed writer left: a record cut short (end of file, a length past it, a chunk that
        # fails to decompress or its CRC). Every record the reader yielded before it is complete.
        except Exception:  # noqa: BLE001
            pass
    return channels, messages


def recover_unfinished(bag_root: str | Path, only_dead: bool = True) -> list[dict]:
    """Turn trials whose recorder died into readable bags marked aborted; returns their index records."""
    root = Path(bag_root)
    recovered = []
    for entry in sorted((root / JOURNAL_DIR).glob('*.json')) if (root / JOURNAL_DIR).exists() else []:
        try:
            info = json.loads(entry.read_text())
        except ValueError:
            entry.unlink()
            continue
        if only_dead and info.get('pid') and info['pid'] != os.getpid() and _pid_alive(info['pid']):
            continue
        recovered.append(_salvage(root, info))
        entry.unlink(missing_ok=True)
    return recovered


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped) is dead for our purpose
        return Path(f'/proc/{pid}/stat').read_text().split(') ')[1][0] != 'Z'
    except (OSError, IndexError):
        return True


def _salvage(root: Path, info: dict) -> dict:
    bag = Path(info['bag_path'])
    record = {'trial_id': info['trial_id'], 'status': 'aborted', 'bag_path': str(bag),
              'cell': info.get('cell'),
              'summary': {'reason': 'recorder died mid-trial; bag recovered up to its last flushed chunk'}}
    partial = bag / f'{bag.name}.mcap'
    if (bag / 'metadata.yaml').exists() or not partial.exists():
        record['summary']['messages'] = 0 if not partial.exists() else None
        _append_index(root, record)
        return record
    channels, messages = read_partial_mcap(partial)
    tmp = bag.with_name(bag.name + '.partial')
    shutil.rmtree(tmp, ignore_errors=True)
    bag.rename(tmp)
    store = typestore()
    out = McapBag(bag).open()
    ids = {cid: out.add_topic(topic, msgtype, offered or [qos()])
           for cid, (topic, msgtype, offered) in channels.items() if msgtype in store.types}
    metadata = {}
    for cid, stamp, data in messages:
        if cid not in ids:
            continue
        out.write(ids[cid], stamp, data)
        if channels[cid][0] == METADATA_TOPIC and not metadata:
            try:
                metadata = json.loads(store.deserialize_cdr(data, 'std_msgs/msg/String').data)
            except ValueError:
                pass
    record['summary']['messages'] = len(messages)
    out.close({CUSTOM_KEY: json.dumps({**metadata, 'status': 'aborted', 'summary': record['summary']},
                                      default=str), 'enpire.status': 'aborted'})
    shutil.move(str(tmp / partial.name), str(bag / 'recorded_partial.mcap.orig'))
    shutil.rmtree(tmp, ignore_errors=True)
    _append_index(root, record)
    return record


def is_privileged(topic: str) -> bool:
    """A topic only audits and tests may read (the simulator's truth)."""
    return f'/{PRIVILEGED}' in topic


def bag_custom_data(bag: str | Path) -> dict:
    import yaml
    meta = yaml.safe_load((Path(bag) / 'metadata.yaml').read_text())
    return (meta.get('rosbag2_bagfile_information') or {}).get('custom_data') or {}


__all__ = ['TrialBag', 'McapBag', 'TrialRecordConfig', 'typestore', 'trial_topics', 'recover_unfinished',
           'list_trials', 'read_partial_mcap', 'bag_custom_data', 'is_privileged', 'qos', 'SENSOR_DATA',
           'METADATA_TOPIC']
