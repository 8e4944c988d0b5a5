"""One rosbag2 folder (MCAP storage + metadata.yaml) per trial, written with rosbags while it runs (pure).

    bag = TrialBag(bag_root, trial_id, cell='cell_0', cameras=['top'], metadata={...})
    bag.open()
    bag.write_cdr(bag.topic('cell_state'), cdr_bytes, stamp_ns)     # bytes from rclpy serialize_message
    bag.write_msg('/trial/metadata', std_msgs_String(...), stamp_ns)  # or a rosbags message object
    bag.close(status='finished')

Nothing lost: the MCAP chunk is closed and flushed to disk every `flush_period_s` (and on every
verdict / trial event), so a recorder killed with SIGKILL leaves a file readable up to its last flushed
chunk. A journal entry (`<bag_root>/.journal/<trial_id>.json`) exists while a trial records; on restart
`recover_unfinished(bag_root)` turns every orphan into a proper bag annotated `status: aborted` and lists
it in `<bag_root>/trials.jsonl`. Topic names are absolute (`/<cell>/cell_state`, ...), as on the graph.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import time
from collections import defaultdict
from functools import lru_cache, wraps
from io import BytesIO
from pathlib import Path

from enpire_common import names
from pydantic import BaseModel, Field
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.enums import CompressionMode
from rosbags.rosbag2.storage_mcap import (
    Channel,
    McapWriter,
    PendingChunk,
    get_qos,
    write_channel,
    write_string,
)
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

METADATA_TOPIC = '/trial/metadata'
PRIVILEGED = 'privileged/'     # topics under <cell>/privileged/: simulator truth, for audits, never agents
JOURNAL_DIR = '.journal'
INDEX_FILE = 'trials.jsonl'
CUSTOM_KEY = 'enpire.trial'

_ZERO = QosTime(sec=0, nsec=0)
_INF = QosTime(sec=2147483647, nsec=4294967295)


def qos(reliable: bool = True, transient_local: bool = False, depth: int = 10) -> Qos:
    return Qos(history=QosHistory.KEEP_LAST, depth=depth,
               reliability=QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
               durability=QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
               deadline=_INF, lifespan=_INF, liveliness=QosLiveliness.AUTOMATIC,
               liveliness_lease_duration=_INF, avoid_ros_namespace_conventions=False)


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


def trial_topics(cell: str, cameras: list[str], image_compression: str = '') -> dict[str, tuple[str, Qos]]:
    """Absolute topic -> (message type, offered QoS) of everything a trial bag holds."""
    def n(name):
        return names.cell_name(cell, name)
    topics = {
        n(names.CELL_STATE): ('enpire_interfaces/msg/CellState', qos()),
        n(names.POLICY_COMMAND): ('enpire_interfaces/msg/Command', qos()),
        n(names.CELL_COMMAND): ('enpire_interfaces/msg/Command', qos()),
        n(names.SAFETY_EVENTS): ('enpire_interfaces/msg/SafetyEvent', qos(depth=100)),
        n(names.TRIAL_EVENTS): ('enpire_interfaces/msg/TrialEvent', qos(depth=100)),
        # PRIVILEGED (simulated cells only): the exact initial state after the reset, for `enpire audit
        # --replay`; never shown to agents (PRIVILEGED_TOPICS).
        n(names.GROUND_TRUTH): ('enpire_interfaces/msg/GroundTruth', qos(depth=1)),
        n('trial/verdicts'): ('enpire_interfaces/msg/FusedVerdict', qos(depth=100)),
        METADATA_TOPIC: ('std_msgs/msg/String', qos(transient_local=True, depth=1)),
        names.TF_STATIC: ('tf2_msgs/msg/TFMessage', qos(transient_local=True, depth=1)),
    }
    for cam in cameras:
        if image_compression:
            topics[n(names.camera_image(cam)) + '/compressed'] = ('sensor_msgs/msg/CompressedImage',
                                                                  qos(False, depth=5))
        else:
            topics[n(names.camera_image(cam))] = ('sensor_msgs/msg/Image', qos(False, depth=5))
        topics[n(names.camera_homography(cam))] = ('enpire_interfaces/msg/TableHomography',
                                                   qos(False, depth=5))
        topics[n(names.camera_info(cam))] = ('sensor_msgs/msg/CameraInfo', qos(False, depth=5))
    return topics


# A 200-step trial with 3 cameras writes ~1,600 messages (16 MB of images); rosbags' generic write path
# (an intermediate BytesIO per record, a list scan comparing Connection dataclasses, three copies of each
# 1 MB chunk on closing it, each copy fresh memory to page in) was most of the recording's cost.
# `_LeanMcapWriter` writes the very same MCAP bytes as rosbags' own writer (a test compares them): one
# header pack per message, the chunk written from its buffer without a copy, and that buffer reused for
# the next chunk. It relies on rosbags 0.11's writer internals, which requirements.txt pins.
_MESSAGE_HEADER = struct.Struct('<BQHIQQ')    # opcode 0x05, record length, channel, sequence, log, publish
_CHUNK_HEADER = struct.Struct('<BQQQQIIQ')    # opcode 0x06, record length, start, end, size, crc, '' , size
_CHUNK_LIMIT = 2**20


class _LeanMcapWriter(McapWriter):
    def add_connection(self, connection, offered_qos_profiles: str) -> None:
        """As rosbags, plus the channel's `topic_type_hash`: rosbag2's MCAP storage writes it and reads it
        back as the topic's type_description_hash (a reader without metadata.yaml keeps the hash)."""
        metadata = BytesIO()
        entries = (('offered_qos_profiles', offered_qos_profiles), ('topic_type_hash', connection.digest))
        for key, value in entries:
            write_string(metadata, key)
            write_string(metadata, value)
        self.channels.append(Channel(connection.id, connection.msgtype, connection.topic,
                                     connection.ext.serialization_format, metadata.getvalue()))
        self.channel_stats[connection.id] = 0
        write_channel(self.chunk.bio, self.channels[-1], self.schemas)

    def write(self, connection, timestamp: int, data: bytes | memoryview) -> None:
        if timestamp < self.message_start_time:
            self.message_start_time = timestamp
        if timestamp > self.message_end_time:
            self.message_end_time = timestamp
        cid = connection.id
        self.channel_stats[cid] += 1
        chunk = self.chunk
        if timestamp < chunk.message_start_time:
            chunk.message_start_time = timestamp
        if timestamp > chunk.message_end_time:
            chunk.message_end_time = timestamp
        bio = chunk.bio
        chunk.msgs[cid].append((timestamp, bio.tell()))
        bio.write(_MESSAGE_HEADER.pack(0x05, 22 + len(data), cid, 0, timestamp, timestamp))
        bio.write(data)
        if bio.tell() > _CHUNK_LIMIT:
            self.close_chunk()

    def close_chunk(self) -> None:
        if self.compression:
            return super().close_chunk()
        chunk = self.chunk
        # The chunk buffer is reused (rewound, not truncated): its content is the part before tell().
        size = chunk.bio.tell()
        chunk_start = self.bio.tell()
        self.bio.write(_CHUNK_HEADER.pack(0x06, 8 + 8 + 8 + 4 + 4 + 8 + size, chunk.message_start_time,
                                          chunk.message_end_time, size, 0, 0, size))
        with chunk.bio.getbuffer() as buffer:
            self.bio.write(buffer[:size])
        chunk_end = self.bio.tell()
        offsets: list[tuple[int, int]] = []
        for cid, msgs in chunk.msgs.items():    # message index records, as rosbags writes them
            offsets.append((cid, self.bio.tell()))
            n = 16 * len(msgs)
            self.bio.write(struct.pack(f'<BQHI{2 * len(msgs)}Q', 0x07, 6 + n, cid, n,
                                       *(v for pair in msgs for v in pair)))
        rec = BytesIO()                           # the chunk index, kept for the summary section
        rec.write(struct.pack('<QQQQI', chunk.message_start_time, chunk.message_end_time, chunk_start,
                              chunk_end - chunk_start, len(offsets) * 10))
        for cid, offset in offsets:
            rec.write(struct.pack('<HQ', cid, offset))
        rec.write(struct.pack('<QIQQ', self.bio.tell() - chunk_end, 0, size, size))
        self.chunks.append(rec)
        chunk.bio.seek(0)
        self.chunk = PendingChunk(2**63 - 1, 0, chunk.bio, defaultdict(list))


class LeanWriter(Writer):
    """rosbags' Writer (MCAP storage, no compression) with a fast `write`."""

    STORAGE_PLUGINS = {**Writer.STORAGE_PLUGINS, StoragePlugin.MCAP: _LeanMcapWriter}

    def write(self, connection, timestamp: int, data: bytes | memoryview) -> None:
        if self.storage is None or self.compression_mode == CompressionMode.MESSAGE:
            return super().write(connection, timestamp, data)
        if connection.owner is not self:
            raise ValueError(f'connection {connection.topic} does not belong to this bag')
        self.storage.write(connection, timestamp, data)
        self.counts[connection.id] += 1
        if timestamp < self.min_timestamp:
            self.min_timestamp = timestamp
        if timestamp > self.max_timestamp:
            self.max_timestamp = timestamp


def _busy(method):
    """Adds the wall time of the outermost recording call to `TrialBag.busy_s` (nested calls count once)."""
    @wraps(method)
    def timed(self, *args, **kwargs):
        if self._depth:
            return method(self, *args, **kwargs)
        self._depth, t0 = 1, time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self._depth = 0
            self.busy_s += time.perf_counter() - t0
    return timed


class TrialBag:
    def __init__(self, bag_root: str | Path, trial_id: str, cell: str, metadata: dict,
                 config: TrialRecordConfig | None = None):
        self.root = Path(bag_root)
        self.trial_id = trial_id
        self.cell = cell
        self.metadata = metadata
        self.config = config or TrialRecordConfig()
        self.path = self.root / trial_id
        self.journal = self.root / JOURNAL_DIR / f'{trial_id}.json'
        self.writer: LeanWriter | None = None
        self.connections: dict = {}
        self._last_flush = 0.0
        self._last_camera: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.closed = False
        # Time the recorder spent writing (serialising, compressing, writing, flushing, closing): the
        # recording's own cost, stored in the bag's summary, measurable whatever the machine's load.
        self.busy_s = 0.0
        self._depth = 0

    def topic(self, name: str) -> str:
        return names.cell_name(self.cell, name)

    @_busy
    def open(self, stamp_ns: int | None = None) -> TrialBag:
        """`stamp_ns`: when the trial starts on the cell's clock (the time base of every topic)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.journal.parent.mkdir(exist_ok=True)
        self.journal.write_text(json.dumps({'trial_id': self.trial_id, 'bag_path': str(self.path),
                                            'pid': os.getpid(), 'cell': self.cell,
                                            'started': time.time()}))
        store = typestore()
        self.writer = LeanWriter(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        for topic, (msgtype, offered) in trial_topics(self.cell, self.config.cameras,
                                                      self.config.image_compression).items():
            self.connections[topic] = self.writer.add_connection(topic, msgtype, typestore=store,
                                                                 offered_qos_profiles=[offered])
        string_type = store.types['std_msgs/msg/String']
        self.write_msg(METADATA_TOPIC, string_type(data=json.dumps(self.metadata, default=str)),
                       time.time_ns() if stamp_ns is None else stamp_ns)
        self.flush()
        return self

    # ------------------------------------------------------------------ writing
    @_busy
    def write_cdr(self, topic: str, data: bytes, stamp_ns: int) -> None:
        if self.writer is None or self.closed:
            return
        conn = self.connections.get(topic)
        if conn is None:
            return
        self.writer.write(conn, int(stamp_ns), data)
        self.counts[topic] = self.counts.get(topic, 0) + 1
        if time.monotonic() - self._last_flush >= self.config.flush_period_s:
            self.flush()

    @_busy
    def write_msg(self, topic: str, msg, stamp_ns: int) -> None:
        conn = self.connections.get(topic)
        if conn is not None:
            self.write_cdr(topic, typestore().serialize_cdr(msg, conn.msgtype), stamp_ns)

    def want_camera(self, camera: str, stamp_ns: int, force: bool = False) -> bool:
        """Rate limit per camera (the homography of a recorded frame is recorded with it); `force`: a
        frame a verdict was judged on, kept whatever the rate. A frame already recorded is not again."""
        last = self._last_camera.get(camera)
        if last == stamp_ns or (not force and last is not None
                                and (stamp_ns - last) < self.config.camera_period_s * 1e9):
            return False
        self._last_camera[camera] = stamp_ns
        return True

    @_busy
    def write_camera(self, camera: str, image_cdr: bytes, homography_cdr: bytes | None,
                     stamp_ns: int) -> bool:
        if not self.want_camera(camera, stamp_ns):
            return False
        topic = self.topic(names.camera_image(camera))
        if self.config.image_compression:
            image_cdr = compress_image_cdr(image_cdr, self.config.image_compression)
            topic += '/compressed'
        self.write_cdr(topic, image_cdr, stamp_ns)
        if homography_cdr is not None:
            self.write_cdr(self.topic(names.camera_homography(camera)), homography_cdr, stamp_ns)
        return True

    @_busy
    def flush(self) -> None:
        """Close the pending MCAP chunk and push it to disk: everything so far survives a kill."""
        if self.writer is None or self.writer.storage is None or self.closed:
            return
        storage = self.writer.storage
        if storage.chunk.msgs:
            storage.close_chunk()
        storage.bio.flush()
        self._last_flush = time.monotonic()

    @_busy
    def close(self, status: str = 'finished', summary: dict | None = None) -> Path:
        if self.closed or self.writer is None:
            return self.path
        record = {**self.metadata, 'status': status, 'summary': summary or {},
                  'recorder_busy_s': round(self.busy_s, 4)}
        self.writer.set_custom_data(CUSTOM_KEY, json.dumps(record, default=str))
        self.writer.set_custom_data('enpire.status', status)
        self.writer.close()
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
def _iter_records(data: bytes):
    """(opcode, body) of every complete MCAP record after the magic; stops at a truncated one."""
    pos = 8
    while pos + 9 <= len(data):
        op, length = struct.unpack_from('<BQ', data, pos)
        if pos + 9 + length > len(data):
            return
        yield op, data[pos + 9:pos + 9 + length]
        pos += 9 + length


def _string(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from('<I', buf, pos)
    return buf[pos + 4:pos + 4 + n].decode(), pos + 4 + n


def read_partial_mcap(path: str | Path) -> tuple[dict[int, tuple[str, str, list[Qos]]],
                                                  list[tuple[int, int, bytes]]]:
    """Channels {id: (topic, schema name, offered QoS)} and messages [(channel id, log time, data)] of
    complete chunks."""
    data = Path(path).read_bytes()
    schemas, channels, messages = {}, {}, []

    def handle(op, body):
        if op == 0x03:
            sid, = struct.unpack_from('<H', body, 0)
            name, _ = _string(body, 2)
            schemas[sid] = name
        elif op == 0x04:
            cid, sid = struct.unpack_from('<HH', body, 0)
            topic, pos = _string(body, 4)
            _encoding, pos = _string(body, pos)
            (size,) = struct.unpack_from('<I', body, pos)
            channels[cid] = (topic, schemas.get(sid, ''), get_qos(body[pos + 4:pos + 4 + size]))
        elif op == 0x05:
            cid, _seq, log_time, _pub = struct.unpack_from('<HIQQ', body, 0)
            messages.append((cid, log_time, body[22:]))

    for op, body in _iter_records(data):
        if op == 0x06:
            compression, pos = _string(body, 28)  # start, end, uncompressed size, crc
            (size,) = struct.unpack_from('<Q', body, pos)
            payload = body[pos + 8:pos + 8 + size]
            if compression:  # the recorder writes uncompressed chunks
                continue
            for inner_op, inner in _iter_records(b'\0' * 8 + payload):
                handle(inner_op, inner)
        else:
            handle(op, body)
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
    metadata = {}
    writer = LeanWriter(bag, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conns = {}
    for cid, (topic, msgtype, offered) in channels.items():
        if msgtype in store.types:      # the QoS it was recorded with (transient local, best effort, ...)
            conns[cid] = writer.add_connection(topic, msgtype, typestore=store,
                                               offered_qos_profiles=offered or [qos()])
    for cid, stamp, data in messages:
        if cid in conns:
            writer.write(conns[cid], stamp, data)
            if conns[cid].topic == METADATA_TOPIC and not metadata:
                try:
                    metadata = json.loads(store.deserialize_cdr(data, 'std_msgs/msg/String').data)
                except ValueError:
                    pass
    record['summary']['messages'] = len(messages)
    writer.set_custom_data(CUSTOM_KEY,
                           json.dumps({**metadata, 'status': 'aborted', 'summary': record['summary']}))
    writer.set_custom_data('enpire.status', 'aborted')
    writer.close()
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


__all__ = ['TrialBag', 'LeanWriter', 'TrialRecordConfig', 'typestore', 'trial_topics', 'recover_unfinished',
           'list_trials',
           'read_partial_mcap', 'bag_custom_data', 'is_privileged', 'METADATA_TOPIC']
