"""Pure pieces of a trial: goal validation, the server's configuration, phase timing (no rclpy)."""
from __future__ import annotations

import hashlib
import os
import re
import stat
import struct
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import numpy as np
from enpire_common.cell_clock import cell_time_field, stall_timeout_field
from pydantic import BaseModel, ConfigDict, Field

from enpire_env.request_checks import count_problem, number_problem, task_problem


class TrialServerConfig(BaseModel):
    """The trial server's parameters (trial_server.yaml); RUNTIME ones may change while it runs."""
    model_config = ConfigDict(allow_inf_nan=False)

    cameras: list[str] = Field(default_factory=lambda: ['top', 'oblique', 'wrist'],
                               description='cameras whose frames the policy sees and the bag keeps')
    bag_dir: str = Field('/tmp/enpire_bags', description="one rosbag2 folder per trial + trials.jsonl (the "
                                                         "cell's recorder writes them)")
    recorder_timeout_wall_s: float = Field(30.0, gt=0.0, le=600.0,
                                           description="wall-clock wait for the recorder's answers, s (a "
                                                       "bag start waits up to 20 s for the cell's streams)")
    recorder_resend_wall_s: float = Field(5.0, gt=0.0, le=600.0,
                                          description='wall s between copies of an unanswered bag start (the '
                                                      'first request to a restarted recorder can be lost)')
    debug_ground_truth: bool = Field(False, description='ground truth in observations (never in benchmarks)')
    control_hz: float = Field(10.0, gt=0.0, le=1000.0, description='policy steps per second of cell time')
    # The policy's act() limits are its compute time: wall seconds (in lockstep the cell's clock stands
    # still while the policy thinks, so cell time could never bound it).
    step_deadline_s: float = Field(0.1, gt=0.0, le=10.0,
                                   description='act() deadline in wall s (compute time); a miss holds the '
                                               'last command')
    hang_timeout_s: float = Field(3.0, gt=0.0, le=600.0,
                                  description='act() still running after this many wall s: the policy is '
                                              'killed')
    policy_cpu_s: float = Field(300.0, gt=0.0, le=86400.0, description='CPU seconds of a policy process')
    policy_memory_mb: int = Field(512, ge=64, le=65536, description='memory of a policy process, MB')
    step_timeout_s: float = cell_time_field(2.0, 'wait for the cell state after a command', le=600.0)
    max_step_timeouts: int = Field(5, ge=1, le=1000, description='consecutive step timeouts: cell is down')
    frame_wait_s: float = Field(0.05, ge=0.0, le=10.0,
                                description="wait for a step's camera frames after its state, wall s (their "
                                            'delivery: a lockstep cell\'s clock stands still meanwhile)')
    verify_every_n_steps: int = Field(0, ge=0, le=1_000_000, description='0: verify at attempt ends only')
    verify_timeout_s: float = cell_time_field(15.0, 'verify service timeout', le=3600.0)
    reset_timeout_s: float = cell_time_field(120.0, 'reset action timeout', le=36000.0)
    clock_stall_timeout_s: float = stall_timeout_field(60.0, 'a dead lockstep cell')
    reset_max_tries: int = Field(3, ge=1, le=100, description='reset attempts before the trial fails')
    save_evidence: bool = Field(True, description="keep the verifier's evidence images")
    table_pixel_m: float = Field(0.001, gt=0.0, le=1.0,
                                 description='metres per workspace pixel: maps frames by their calibration')
    policy_dirs: list[str] = Field(default_factory=lambda: ['/tmp', 'runs'],
                                   description='policy files (and weights they name) must lie in one of '
                                               'these folders (relative: to the working directory)')
    max_attempts: int = Field(64, ge=1, le=10_000, description='upper bound of a goal\'s attempts')
    max_steps_per_attempt: int = Field(10_000, ge=1, le=10_000_000,
                                       description="upper bound of a goal's steps_per_attempt")
    max_time_budget_s: float = Field(7200.0, gt=0.0, le=7 * 86400.0,
                                     description='upper bound of a trial in s of cell time (also when the '
                                                 'goal gives 0)')
    accept_weaker_sandbox: bool = Field(False, description='without an OS sandbox on this machine, run '
                                                           'agent code behind the Python guard only')


# Parameters a running trial server takes from the next trial on; every other one is read-only.
RUNTIME_PARAMETERS = frozenset({
    'step_deadline_s', 'hang_timeout_s', 'policy_cpu_s', 'policy_memory_mb', 'step_timeout_s',
    'max_step_timeouts', 'frame_wait_s', 'verify_every_n_steps', 'verify_timeout_s', 'reset_timeout_s',
    'reset_max_tries', 'save_evidence', 'max_attempts', 'max_steps_per_attempt', 'max_time_budget_s',
    'clock_stall_timeout_s'})
TRIAL_ID = re.compile(r'[A-Za-z0-9_-]{1,64}')
MAX_POLICY_BYTES = 1 << 20


def sha256_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def policy_dirs(config: TrialServerConfig) -> tuple[str, ...]:
    return tuple(os.path.realpath(d) for d in config.policy_dirs if d)


def validate_goal(goal, config: TrialServerConfig | None = None, used_ids=frozenset()) -> str:
    """'' when the RunTrial goal can run, else the reason it cannot (never a file's hash or content)."""
    config = config or TrialServerConfig()
    trial_id = getattr(goal, 'trial_id', '')
    if trial_id and not TRIAL_ID.fullmatch(trial_id):
        return (f'trial_id must be 1-64 letters, digits, _ or - (got {len(trial_id)} characters: '
                f'{trial_id[:64]!r})')
    if trial_id and trial_id in used_ids:
        return f'trial_id {trial_id!r} is already used on this cell'
    return (task_problem(goal.task, goal.distribution or None)   # the registry's tasks and distributions
            or count_problem(goal.attempts, 'attempts', 1, config.max_attempts)
            or count_problem(goal.steps_per_attempt, 'steps_per_attempt', 1, config.max_steps_per_attempt)
            or number_problem(goal.time_budget_s, "time_budget_s (0: the server's bound)", 0.0,
                              config.max_time_budget_s)
            or policy_file_problem(goal.policy_path, goal.policy_sha256, policy_dirs(config)))


def policy_file_problem(policy_path: str, policy_sha256: str, dirs: tuple[str, ...]) -> str:
    """'' when `policy_path` names a policy file the server may hand to the sandbox."""
    shown = repr(policy_path[:200])
    if not policy_path or '\x00' in policy_path:
        return f'policy file not found: {shown}'
    real = os.path.realpath(policy_path)
    if not any(real == d or real.startswith(d.rstrip(os.sep) + os.sep) for d in dirs):
        return f'policy_path {shown} is outside the policy folders of this cell ({", ".join(dirs)})'
    try:
        st = os.stat(real)
    except OSError:
        return f'policy file not found: {shown}'
    if not stat.S_ISREG(st.st_mode) or not real.endswith('.py'):
        return f'policy_path {shown} is not a .py file'
    if not st.st_mode & stat.S_IROTH:
        return f'policy file {shown} is not readable by everyone (the sandbox runs as another user)'
    if st.st_size > MAX_POLICY_BYTES:
        return f'policy file {shown} is larger than {MAX_POLICY_BYTES} bytes'
    if not policy_sha256:
        return 'policy_sha256 is missing (the content hash of the policy file)'
    if sha256_file(real) != policy_sha256.lower():
        return 'policy_sha256 mismatch: the file does not have the content the goal names'
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
