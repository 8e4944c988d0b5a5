"""Pure pieces of a trial: goal validation, the server's configuration, phase timing (no rclpy)."""
from __future__ import annotations

import hashlib
import math
import struct
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import numpy as np
from pydantic import BaseModel, Field

KNOWN_TASKS = ('pusht',)
DISTRIBUTIONS = ('in_distribution', 'out_of_distribution')


class TrialServerConfig(BaseModel):
    cameras: list[str] = Field(default_factory=lambda: ['top', 'oblique', 'wrist'])
    bag_dir: str = '/tmp/enpire_bags'
    record_camera_period_s: float = 0.0
    image_compression: str = ''
    flush_period_s: float = 0.5
    debug_ground_truth: bool = False
    control_hz: float = 10.0
    step_deadline_s: float = 0.1
    hang_timeout_s: float = 3.0
    policy_cpu_s: float = 300.0
    policy_memory_mb: int = 512
    step_timeout_s: float = 2.0          # waiting for the cell's next state after a command
    max_step_timeouts: int = 5           # consecutive: the cell is not responding
    frame_wait_s: float = 0.05           # after a state: wait this long for that step's camera frames
    verify_every_n_steps: int = 0        # 0: only at the end of an attempt
    verify_timeout_s: float = 15.0
    reset_timeout_s: float = 120.0
    reset_max_tries: int = 3
    save_evidence: bool = True
    table_pixel_m: float = 0.001         # metres per workspace pixel: maps frames by their calibration


def sha256_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def validate_goal(goal) -> str:
    """'' when the RunTrial goal can run, else the reason it cannot."""
    if goal.task not in KNOWN_TASKS:
        return f'unknown task {goal.task!r} (known: {", ".join(KNOWN_TASKS)})'
    if goal.distribution and goal.distribution not in DISTRIBUTIONS:
        return f'unknown distribution {goal.distribution!r} (known: {", ".join(DISTRIBUTIONS)})'
    if goal.attempts < 1:
        return f'attempts must be >= 1 (got {goal.attempts})'
    if goal.steps_per_attempt < 1:
        return f'steps_per_attempt must be >= 1 (got {goal.steps_per_attempt})'
    if not math.isfinite(goal.time_budget_s) or goal.time_budget_s < 0:
        return f'time_budget_s must be finite and >= 0 (got {goal.time_budget_s})'
    path = Path(goal.policy_path)
    if not goal.policy_path or not path.is_file():
        return f'policy file not found: {goal.policy_path!r}'
    if not goal.policy_sha256:
        return 'policy_sha256 is missing (the content hash of the policy file)'
    actual = sha256_file(path)
    if actual != goal.policy_sha256.lower():
        return f'policy_sha256 mismatch: the file hashes to {actual}, the goal says {goal.policy_sha256}'
    return ''


def new_trial_id(cell: str) -> str:
    return f"{time.strftime('%Y%m%d_%H%M%S')}_{cell.strip('/').replace('/', '_')}_{uuid.uuid4().hex[:6]}"


class PhaseClock:
    """Wall-clock seconds per phase (reset / executing / verifying / idle) of one cell."""

    def __init__(self):
        self.totals: dict[str, float] = {'reset': 0.0, 'executing': 0.0, 'verifying': 0.0, 'idle': 0.0}
        self.phase = 'idle'
        self.since = time.monotonic()

    def switch(self, phase: str) -> float:
        now = time.monotonic()
        spent = now - self.since
        self.totals[self.phase] = self.totals.get(self.phase, 0.0) + spent
        self.phase, self.since = phase, now
        return spent


class RawFrame(NamedTuple):
    """A message as it came off the wire (CDR bytes) with its header stamp."""
    stamp_ns: int
    data: bytes


_CDR_LE = b'\x00\x01'
_STAMP = struct.Struct('<iI')


def header_stamp_ns(cdr: bytes) -> int:
    """The header stamp of a serialised message whose first field is a std_msgs/Header, read from the
    bytes (the CDR encapsulation header, then int32 sec, uint32 nanosec) without deserialising."""
    if len(cdr) < 12:
        raise ValueError(f'{len(cdr)} bytes: too short for a message with a header')
    sec, nanosec = _STAMP.unpack_from(cdr, 4) if cdr[:2] == _CDR_LE else struct.unpack_from('>iI', cdr, 4)
    return sec * 1_000_000_000 + nanosec


def image_to_array(height: int, width: int, encoding: str, data) -> np.ndarray:
    """sensor_msgs/Image fields to an HxWx3 RGB uint8 array (rgb8 / bgr8 / mono8)."""
    buf = np.frombuffer(bytes(data) if not isinstance(data, (bytes, np.ndarray)) else data, dtype=np.uint8)
    if encoding == 'mono8':
        return np.repeat(buf.reshape(height, width, 1), 3, axis=2)
    img = buf.reshape(height, width, -1)[:, :, :3]
    if encoding == 'bgr8':
        img = img[:, :, ::-1]
    return np.ascontiguousarray(img)
