"""The recorder's writing side (pure): subscription callbacks enqueue raw CDR, one writer thread writes bags.

    rec = BagRecorder(cell='cell_0', config=RecorderConfig(cameras=['top']))
    rec.offer('cell_state', data, log_time_ns)                # from a callback: an append, nothing more
    rec.start('trial_1', '/tmp/bags', {'seed': 7}).result()   # start / split / stop run on the writer
    path, closed = rec.stop('finished', {...}, [Mark('cell_state', stamp_ns=..)])  # thread, in queue order

Start, split and stop are queued behind the messages that arrived before them, so a bag holds exactly the
messages received between its start and its end; split closes one bag and opens the next between two
messages (no gap). A stop waits (up to `settle_timeout_s`, wall clock: a paused simulation must not hold a
bag open) until the bag holds what the trial server saw on each marked topic, then closes it. The camera
rate limit, PNG/JPEG compression and MCAP's zstd compression all run on the writer thread, off the control
loop. The frames a verdict was judged on (the capture stamps it names) are kept whatever the camera rate,
from a short ring of recent frames per camera.
"""
from __future__ import annotations

import struct
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from enpire_common import names
from pydantic import BaseModel, ConfigDict, Field

from enpire_rollout.trial_bag import TrialBag, TrialRecordConfig, recover_unfinished, typestore
from enpire_rollout.trial_core import header_stamp_ns

RING = 32                              # recent frames kept per camera stream for a verdict's judged frames
HOLD_S = 0.001                         # wall seconds of writing between two hand-overs of the GIL
DRAIN_PERIOD_S = 0.1                   # wall seconds between two passes of the writer over received messages
IMAGE, INFO, HOMOGRAPHY = 'image', 'info', 'homography'


class RecorderConfig(BaseModel):
    """The recorder node's parameters (recorder.yaml)."""
    model_config = ConfigDict(allow_inf_nan=False)

    cameras: list[str] = Field(default_factory=lambda: ['top', 'oblique', 'wrist'],
                               description='cameras whose frames, CameraInfo and homographies are recorded')
    record_camera_period_s: float = Field(0.0, ge=0.0, le=3600.0,
                                          description='seconds between recorded frames per camera (0: all)')
    image_compression: str = Field('', pattern=r'^(|png|jpeg)$', description="'' raw | png | jpeg")
    flush_period_s: float = Field(0.5, gt=0.0, le=60.0, description='MCAP chunk flushed at least this often')
    settle_timeout_wall_s: float = Field(5.0, gt=0.0, le=600.0,
                                         description='wall-clock bound of a stop waiting for marked messages')
    start_wait_wall_s: float = Field(20.0, gt=0.0, le=600.0,
                                     description="wall-clock bound of a start waiting for the cell's clock "
                                                 "and streams (under the trial server's "
                                                 'recorder_timeout_wall_s)')


@dataclass(frozen=True)
class Mark:
    """A stop waits until the bag holds, on `topic` (relative name; any but a camera stream), a message
    stamped at or after `stamp_ns` (header stamp) and at least `count` messages."""
    topic: str
    stamp_ns: int = 0
    count: int = 0


@dataclass
class ClosedBag:
    trial_id: str
    bag_path: str
    status: str
    messages: int
    cpu_s: float                                          # the recorder's CPU time while the bag was open
    missing: list[str] = field(default_factory=list)    # marks not met when the settle timeout ran out


class BagRecorder:
    def __init__(self, cell: str, config: RecorderConfig, log=None, on_closed=None):
        """`on_closed(ClosedBag)`: called on the writer thread for every bag it closes."""
        self.cell = cell
        self.config = config
        self.log = log or (lambda _msg: None)
        self.on_closed = on_closed or (lambda _closed: None)
        self.bag: TrialBag | None = None
        self._open_path: str | None = None    # the open bag no stop was asked for yet (callers' view)
        self._lock = threading.Lock()
        # Messages and requests in arrival order. A message is a deque append (no lock, no wake-up: waking
        # the writer per message cost more CPU than writing it); a request also sets `_wake`.
        self._queue: deque = deque()
        self._wake = threading.Event()
        self._camera_of = {}              # camera stream topic -> (camera, image | info | homography)
        for cam in config.cameras:
            self._camera_of[names.camera_image(cam)] = (cam, IMAGE)
            self._camera_of[names.camera_info(cam)] = (cam, INFO)
            self._camera_of[names.camera_homography(cam)] = (cam, HOMOGRAPHY)
        self._rings: dict[str, deque] = {t: deque(maxlen=RING) for t in self._camera_of}
        self._latest_info: dict[str, tuple[bytes, int]] = {}
        self._info_recorded: dict[str, bytes] = {}   # camera -> the intrinsics last put in the bag
        self._static: list[bytes] = []   # the cell's /tf_static messages (latched), into every bag
        self._seen: dict[str, tuple[int, int]] = {}          # topic -> (latest stamp, count) in this bag
        self._stopping: tuple | None = None
        self.callback_cpu_s = 0.0         # added by the node's callbacks (time.thread_time)
        self.writer_cpu_s = 0.0
        self._cpu_at_start = (0.0, 0.0)
        self._thread = threading.Thread(target=self._run, name=f'recorder_{cell}', daemon=True)
        self._closed = False
        self._thread.start()

    # ---------------------------------------------------------------- any thread
    def offer(self, topic: str, data: bytes, log_time_ns: int) -> None:
        self._queue.append((topic, data, log_time_ns))

    def start(self, trial_id: str, bag_dir: str, metadata: dict, log_time_ns: int) -> Future:
        """Future of the bag's path; fails if a bag is open or the folder exists."""
        return self._call(self._start, trial_id, bag_dir, metadata, log_time_ns)

    def split(self, status: str, summary: dict, trial_id: str, bag_dir: str, metadata: dict,
              log_time_ns: int) -> Future:
        """Future of (the closed bag, the new bag's path)."""
        return self._call(self._split, status, summary, trial_id, bag_dir, metadata, log_time_ns)

    def stop(self, status: str, summary: dict, marks: list[Mark], settle_timeout_s: float | None = None
             ) -> tuple[str, Future]:
        """(the path of the bag that closes, Future of its ClosedBag); RuntimeError if none is open."""
        timeout = self.config.settle_timeout_wall_s if settle_timeout_s is None else settle_timeout_s
        with self._lock:
            path, self._open_path = self._open_path, None
        if path is None:
            raise RuntimeError('no bag is open')
        future: Future = Future()
        self._request(('stop', future, (status, summary, list(marks), timeout)))
        return path, future

    def is_open(self) -> bool:
        """A bag is open or closing (started and not yet closed)."""
        return self.bag is not None or self._stopping is not None or self._open_path is not None

    def cpu_s(self) -> float:
        """The recorder's CPU time so far: its writer thread and its subscription callbacks."""
        return self.writer_cpu_s + self.callback_cpu_s

    def shutdown(self, timeout: float = 10.0) -> None:
        """Close an open bag as aborted (never left unfinished by a clean exit), end the writer thread."""
        if self._closed:
            return
        self._closed = True
        self._request(('shutdown', None, None))
        self._thread.join(timeout)

    # ---------------------------------------------------------------- writer thread
    def _request(self, item) -> None:
        self._queue.append(item)
        self._wake.set()

    def _call(self, fn, *args) -> Future:
        future: Future = Future()
        self._request(('call', future, (fn, args)))
        return future

    def _run(self) -> None:
        """Every DRAIN_PERIOD_S (at once on a request; every 20 ms while a stop waits for its marks) write
        what arrived, handing the GIL over after each HOLD_S of writing: the cell's executor thread, not
        this one, is on the control loop. Each hand-over costs this thread CPU time, so not per message."""
        items = self._queue
        while True:
            self._wake.wait(0.02 if self._stopping else DRAIN_PERIOD_S)
            self._wake.clear()
            until = time.perf_counter() + HOLD_S
            while items:
                item = items.popleft()
                if item[0] == 'shutdown' and item[1] is None:
                    self._abort_open('recorder shut down mid-trial')
                    self.writer_cpu_s = time.thread_time()
                    return
                self._handle(item)
                if time.perf_counter() > until and items:
                    time.sleep(0)
                    until = time.perf_counter() + HOLD_S
            self._handle(None)
            self.writer_cpu_s = time.thread_time()

    def _handle(self, item) -> None:
        try:
            if item is None:                  # after a pass: the chunk closed if the flush period is over
                if self.bag is not None:
                    self.bag.maybe_flush()
            elif item[0] == 'call':
                fn, args = item[2]
                _resolve(item[1], fn, *args)
            elif item[0] == 'stop':
                self._begin_stop(*item[1:])
            else:
                self._write(*item)
            self._maybe_finish_stop()
        except Exception as exc:  # noqa: BLE001 - the recorder lives on; the bag says what happened
            self.log(f'recorder: {type(exc).__name__}: {exc}')

    def _start(self, trial_id: str, bag_dir: str, metadata: dict, log_time_ns: int) -> str:
        if self.bag is not None or self._stopping:
            raise RuntimeError(f'a bag is open ({self.bag.trial_id if self.bag else "stopping"})')
        for record in recover_unfinished(bag_dir):     # bags of a recorder that died, never lost
            self.log(f"unfinished trial {record['trial_id']} recorded as aborted: {record['bag_path']}")
        if (Path(bag_dir) / trial_id).exists():
            raise FileExistsError(f'a bag of trial {trial_id} exists in {bag_dir}')
        config = TrialRecordConfig(cameras=self.config.cameras,
                                   camera_period_s=self.config.record_camera_period_s,
                                   image_compression=self.config.image_compression,
                                   flush_period_s=self.config.flush_period_s)
        metadata = {**metadata, 'recorder': self.config.model_dump()}     # what this bag keeps, and how
        bag = TrialBag(bag_dir, trial_id, self.cell, metadata, config).open(log_time_ns)
        self.bag, self._seen = bag, {}
        with self._lock:
            self._open_path = str(bag.path)
        self.writer_cpu_s = time.thread_time()
        self._cpu_at_start = (self.writer_cpu_s, self.callback_cpu_s)
        for data in self._static:       # the cell's calibration, latched: into every bag from its start
            bag.write_cdr(names.TF_STATIC, data, log_time_ns)
        self._info_recorded = {}
        for cam, (data, _stamp) in self._latest_info.items():
            bag.write_cdr(bag.topic(names.camera_info(cam)), data, log_time_ns)
            self._info_recorded[cam] = _after_header(data)
        return str(bag.path)

    def _split(self, status, summary, trial_id, bag_dir, metadata, log_time_ns) -> tuple[ClosedBag, str]:
        if self.bag is None or self._stopping:
            raise RuntimeError('no bag is open')
        if (Path(bag_dir) / trial_id).exists():
            raise FileExistsError(f'a bag of trial {trial_id} exists in {bag_dir}')
        closed = self._close(status, summary)
        return closed, self._start(trial_id, bag_dir, metadata, log_time_ns)

    def _begin_stop(self, future: Future, args) -> None:
        if self.bag is None or self._stopping:
            future.set_exception(RuntimeError('no bag is open'))
            return
        status, summary, marks, timeout = args
        self._stopping = (future, status, summary, marks, time.monotonic() + timeout)

    def _maybe_finish_stop(self) -> None:
        if not self._stopping:
            return
        future, status, summary, marks, deadline = self._stopping
        missing = [m for m in marks if not self._met(m)]
        if missing and time.monotonic() < deadline:
            return
        self._stopping = None
        names_missing = [f'{m.topic} (stamp >= {m.stamp_ns}, count >= {m.count})' for m in missing]
        if names_missing:
            summary = {**summary, 'recorder_missing': names_missing}
        _resolve(future, self._close, status, summary, names_missing)

    def _met(self, mark: Mark) -> bool:
        stamp, count = self._seen.get(mark.topic, (-1, 0))
        return count >= mark.count and (mark.stamp_ns <= 0 or stamp >= mark.stamp_ns)

    def _close(self, status: str, summary: dict, missing: list[str] | None = None) -> ClosedBag:
        bag, self.bag = self.bag, None
        with self._lock:
            if self._open_path == str(bag.path):
                self._open_path = None
        messages = sum(bag.counts.values())
        writer, callbacks = (now - then for now, then in zip((time.thread_time(), self.callback_cpu_s),
                                                             self._cpu_at_start, strict=True))
        # In the bag: the CPU time up to its close; announced (BagClosed): with the close itself.
        bag.close(status, {**summary, 'messages': messages, 'recorder_cpu_s': round(writer + callbacks, 4),
                           'recorder_writer_cpu_s': round(writer, 4),
                           'recorder_callback_cpu_s': round(callbacks, 4)})
        cpu = time.thread_time() - self._cpu_at_start[0] + callbacks
        closed = ClosedBag(bag.trial_id, str(bag.path), status, messages, cpu, missing or [])
        self.on_closed(closed)
        return closed

    def _abort_open(self, reason: str) -> None:
        if self._stopping:
            future = self._stopping[0]
            self._stopping = None
            future.set_exception(RuntimeError(reason))
        if self.bag is not None:
            self._close('aborted', {'reason': reason})

    def _write(self, topic: str, data: bytes, log_time_ns: int) -> None:
        camera = self._camera_of.get(topic)
        if camera is not None:
            self._camera(*camera, topic, data, log_time_ns)
            return
        if topic == names.TF_STATIC:
            data = bytes(data)
            if data not in self._static:
                self._static = (self._static + [data])[-16:]
        bag = self.bag
        if bag is None:
            return
        if topic == names.GROUND_TRUTH and not _placement(data):
            return           # privileged: only the placements' truth (step 0) is kept, for audits
        if bag.write_cdr(bag.topic(topic), data, log_time_ns):
            self._saw(topic, data)
        if topic == names.TRIAL_VERDICTS:
            self._judged_frames(data)

    def _saw(self, topic: str, data: bytes) -> None:
        try:
            stamp = header_stamp_ns(data)
        except ValueError:
            stamp = -1
        last, count = self._seen.get(topic, (-1, 0))
        self._seen[topic] = (max(last, stamp), count + 1)

    def _camera(self, cam: str, kind: str, topic: str, data: bytes, log_time_ns: int) -> None:
        stamp = header_stamp_ns(data)
        if kind == INFO:
            # A camera's intrinsics: into the bag at its start and whenever they change (not with every
            # frame: the same numbers ten times a second are a tenth of a trial's messages).
            self._latest_info[cam] = (bytes(data), stamp)
            if self.bag is not None and _after_header(data) != self._info_recorded.get(cam):
                self._info_recorded[cam] = _after_header(data)
                self.bag.write_cdr(self.bag.topic(topic), data, log_time_ns)
            return
        self._rings[topic].append((stamp, data, log_time_ns))
        if self.bag is not None:
            self._record_camera(cam, kind, topic, stamp, data, log_time_ns, force=False)

    def _record_camera(self, cam, kind, topic, stamp, data, log_time_ns, force: bool) -> None:
        """Frames at the camera rate, each homography at the same rate (its own stream: the sim's frame
        and homography of one capture share a stamp, so they are kept or dropped together)."""
        bag = self.bag
        if kind == IMAGE:
            bag.write_camera(cam, data, stamp, log_time_ns, force=force)
        elif bag.want_camera(topic, stamp, force):
            bag.write_cdr(bag.topic(topic), data, log_time_ns)

    def _judged_frames(self, verdict_cdr: bytes) -> None:
        """The frames a verdict names (its cameras' capture stamps), with their CameraInfo and homography,
        kept in the bag even between the frames the camera rate keeps, so `enpire audit` re-judges them."""
        verdict = typestore().deserialize_cdr(verdict_cdr, 'enpire_interfaces/msg/FusedVerdict')
        for camera in verdict.cameras:
            cam = camera.camera
            if cam not in self.config.cameras:
                continue
            stamp_ns = camera.frame_stamp.sec * 1_000_000_000 + camera.frame_stamp.nanosec
            for kind, topic in ((IMAGE, names.camera_image(cam)), (HOMOGRAPHY, names.camera_homography(cam))):
                for stamp, data, log_time_ns in self._rings[topic]:
                    if stamp == stamp_ns:
                        self._record_camera(cam, kind, topic, stamp, data, log_time_ns, force=True)


def _after_header(cdr: bytes) -> bytes:
    """A CDR message's fields after its std_msgs/Header (stamp, frame_id): what it says, not when."""
    try:
        (length,) = struct.unpack_from('<I' if cdr[1:2] == b'\x01' else '>I', cdr, 12)
    except struct.error:
        return bytes(cdr)
    return bytes(cdr[16 + length:])


def _placement(truth_cdr: bytes) -> bool:
    """A GroundTruth of a placement (step 0: its uint64 right after the header, read from the bytes); one
    that cannot be read is kept rather than lost."""
    try:
        little = truth_cdr[1:2] == b'\x01'
        (length,) = struct.unpack_from('<I' if little else '>I', truth_cdr, 12)
        offset = 16 + length
        offset += -(offset - 4) % 8                  # CDR aligns the uint64 from the end of the encapsulation
        (step,) = struct.unpack_from('<Q' if little else '>Q', truth_cdr, offset)
        return step == 0
    except struct.error:
        return True


def _resolve(future: Future, fn, *args) -> None:
    try:
        future.set_result(fn(*args))
    except Exception as exc:  # noqa: BLE001 - handed to the caller
        future.set_exception(exc)


__all__ = ['BagRecorder', 'ClosedBag', 'RecorderConfig', 'Mark']
