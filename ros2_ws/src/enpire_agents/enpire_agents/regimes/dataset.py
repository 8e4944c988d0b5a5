"""Datasets for the learning regimes, built from trial bags (MCAP rosbag2, read with rosbags; pure).

    ds = build_dataset('/tmp/enpire_bags', only_success=True)          # camera features (default)
    ds.obs (N, F)  the task's feature map (its default one unless `feature_map=` names another)
    ds.act (N, 2)  ds.trial / ds.attempt / ds.step (N,)   ds.seed / ds.policy_sha256 (N,)
    ds.reward (N,)  the verifier's reward of the attempt a step belongs to, given at its last step
    ds.attempt_score / ds.attempt_success (N,)  the verdict of that attempt, on every one of its steps
    export_lerobot(ds, 'out/enpire_dataset', cameras=['top'])          # LeRobot v3.0 layout

The task's parts come from `task_learning(task)` (its `Task.extras['learning']`; default: the one task).
Observations (`features=`):
- 'camera' (default, what a policy gets): the task state from the recorded top frame through the task's
  `locate` (the same perception the sandboxed policy calls), held over steps where it is not seen, plus
  the agent position from CellState, mapped by the task runtime's `feature_map(feature_map)` -- the exact
  class the numpy runtime uses (default: the task's `default_feature_map`, whose history is reset at each
  attempt's start);
- 'debug_state' (named debug variant): the true task state from `/<cell>/privileged/ground_truth` at every
  step, which only debug recordings hold (a trial bag keeps only the placements' states, step 0, there).
Actions: the safe command the cell tracked for the step (CellState.commanded of the next state,
i.e. the policy command after the safety node), as the task's `action_label(agent, target)`; `act_abs`
keeps the absolute target.

Alignment: CellState, image and homography of one step share a stamp (sim time, or the robot's); states
are ordered by their `step` counter (the trial's last placement onward) and cut into attempts with the
`steps` of each `attempt_verified` trial event, whose score/success are the attempt's verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from enpire_common import messages, names

from enpire_agents.regimes import task_learning

FEATURE_VARIANTS = ('camera', 'debug_state')


@dataclass
class TrialData:
    trial_id: str
    seed: int
    policy_sha256: str
    success: bool
    obs: np.ndarray
    act: np.ndarray
    act_abs: np.ndarray
    agent: np.ndarray
    attempt: np.ndarray
    step: np.ndarray
    attempt_score: np.ndarray
    attempt_success: np.ndarray
    last_of_attempt: np.ndarray
    unseen: int = 0  # steps whose frame did not show the task state (held from before)
    bag: str = ''  # the trial bag the steps come from
    stamp_ns: np.ndarray | None = None  # each step's cell-state stamp (for frames taken from the bag)


@dataclass
class Dataset:
    trials: list[TrialData] = field(default_factory=list)
    features: str = 'camera'
    feature_map: str = ''      # '' = the task's default feature map
    task: str | None = None    # None = the one installed task

    def __post_init__(self):
        self.feature_map = self.feature_map or task_learning(self.task).default_feature_map

    def _cat(self, name, dtype=None):
        parts = [getattr(t, name) for t in self.trials]
        if not parts:
            return np.zeros((0,), dtype=dtype or float)
        return np.concatenate(parts).astype(dtype) if dtype else np.concatenate(parts)

    @property
    def obs(self):
        if self.trials:
            return self._cat('obs')
        return np.zeros((0, len(task_learning(self.task).runtime.FEATURE_MAPS[self.feature_map])))

    @property
    def act(self):
        return self._cat('act') if self.trials else np.zeros((0, 2))

    @property
    def trial(self):
        return (
            np.concatenate([np.full(len(t.obs), i) for i, t in enumerate(self.trials)])
            if self.trials
            else np.zeros(0, int)
        )

    @property
    def seed(self):
        return (
            np.concatenate([np.full(len(t.obs), t.seed) for t in self.trials])
            if self.trials
            else np.zeros(0, int)
        )

    @property
    def policy_sha256(self):
        return (
            np.concatenate([np.full(len(t.obs), t.policy_sha256) for t in self.trials])
            if self.trials
            else np.zeros(0, str)
        )

    attempt = property(lambda self: self._cat('attempt', int))
    step = property(lambda self: self._cat('step', int))
    attempt_score = property(lambda self: self._cat('attempt_score', float))
    attempt_success = property(lambda self: self._cat('attempt_success', bool))

    @property
    def reward(self):
        """The verifier's reward (1 for a successful attempt, else 0) at each attempt's last step."""
        return (self._cat('last_of_attempt', bool) & self.attempt_success).astype(float)

    def __len__(self):
        return sum(len(t.obs) for t in self.trials)

    def summary(self) -> dict:
        return {
            'trials': len(self.trials),
            'samples': len(self),
            'features': self.features,
            'feature_map': self.feature_map,
            'successful_trials': sum(t.success for t in self.trials),
            'seeds': sorted({t.seed for t in self.trials}),
            'policies': sorted({t.policy_sha256[:12] for t in self.trials}),
            'unseen_steps': sum(t.unseen for t in self.trials),
        }


def bag_paths(root_or_paths) -> list[Path]:
    """Bag folders (those holding a metadata.yaml) at any depth under a bag root, or the given paths.

    The trial server writes `<bag_dir>/<trial>/` and the sim bringup gives each cell its own bag_dir
    (`.../bags/<cell>/<trial>/`), so a root of several cells' bags holds them two levels down.
    """
    if isinstance(root_or_paths, (str, Path)):
        root = Path(root_or_paths)
        if (root / 'metadata.yaml').exists():
            return [root]
        return sorted({p.parent for p in root.rglob('metadata.yaml')})
    return [Path(p) for p in root_or_paths]


def _ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _image(msg, msgtype: str) -> np.ndarray | None:
    if msgtype.endswith('CompressedImage'):
        import cv2

        img = cv2.imdecode(np.asarray(msg.data, dtype=np.uint8), cv2.IMREAD_COLOR)
        return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    arr = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    try:
        arr = arr.reshape(msg.height, msg.width, -1)[:, :, :3]
    except ValueError:
        return None
    return arr[:, :, ::-1].copy() if msg.encoding.lower().startswith('bgr') else arr


def read_trial(
    bag: str | Path, features: str = 'camera', camera: str = 'top', feature_map: str = '',
    task: str | None = None,
) -> TrialData | None:
    """One bag as aligned (observation, safe command) pairs; None when it holds no step."""
    from rosbags.rosbag2 import Reader

    from enpire_rollout.policy_contract import Observation
    from enpire_rollout.trial_bag import METADATA_TOPIC, typestore

    if features not in FEATURE_VARIANTS:
        raise ValueError(f'unknown features {features!r} (known: {FEATURE_VARIANTS})')
    store = typestore()
    meta, states, frames, homs, truth, events = {}, [], {}, {}, {}, []
    with Reader(bag) as reader:
        for conn, _t, raw in reader.messages():
            topic, kind = conn.topic, conn.msgtype
            if topic == METADATA_TOPIC:
                meta = json.loads(store.deserialize_cdr(raw, kind).data)
            elif topic.endswith('/' + names.CELL_STATE):
                m = store.deserialize_cdr(raw, kind)
                states.append(
                    (
                        int(m.step),
                        _ns(m.header.stamp),
                        messages.tool_position(m)[:2],
                        messages.vector(m.commanded),
                    )
                )
            elif topic.endswith(names.camera_image(camera)) or topic.endswith(
                names.camera_image(camera) + '/compressed'
            ):
                m = store.deserialize_cdr(raw, kind)
                frames[_ns(m.header.stamp)] = (m, kind)
            elif topic.endswith(names.camera_homography(camera)):
                m = store.deserialize_cdr(raw, kind)
                homs[_ns(m.header.stamp)] = np.asarray(m.table_to_image, dtype=float).reshape(3, 3)
            elif topic.endswith('/' + names.GROUND_TRUTH):
                m = store.deserialize_cdr(raw, kind)
                truth[int(m.step)] = messages.vector(m.task_state)
            elif topic.endswith('/' + names.TRIAL_EVENTS):
                m = store.deserialize_cdr(raw, kind)
                if m.event == 'attempt_verified':
                    events.append((int(m.attempt), json.loads(m.detail or '{}'), float(m.score)))
    if not states:
        return None
    # the trial's last placement onward, one state per step
    cut = 0
    for i in range(1, len(states)):
        if states[i][0] < states[i - 1][0]:
            cut = i
    by_step = {}
    for s in states[cut:]:
        by_step.setdefault(s[0], s)
    steps = sorted(by_step)
    seq = [by_step[s] for s in steps]
    # Every bag holds the truth of its initial state (step 0, for audits); a debug recording every step's.
    if features == 'debug_state' and set(truth) <= {0}:
        raise ValueError(f'{bag}: no ground truth recorded; the debug_state variant needs a debug recording')
    # attempt boundaries and verdicts
    events.sort(key=lambda e: e[0])
    bounds, spa = [], int(meta.get('steps_per_attempt', 300) or 300)
    total = 0
    for attempt, detail, score in events:
        n = int(detail.get('steps', spa))
        bounds.append((attempt, total, total + n, float(score), bool(detail.get('success', False))))
        total += n
    if not bounds:
        bounds = [(1, 0, len(seq) - 1, 0.0, False)]
    frame_stamps = np.array(sorted(frames)) if frames else np.zeros(0, dtype=np.int64)
    obs, act, act_abs, agent, att, stp, a_score, a_succ, last, stamps = ([] for _ in range(10))
    pose, unseen = None, 0
    learning = task_learning(task)
    fmap, fmap_attempt = learning.runtime.feature_map(feature_map or learning.default_feature_map), None

    for i in range(len(seq) - 1):
        step_no, stamp, agent_xy, _ = seq[i]
        where = [b for b in bounds if b[1] <= i < b[2]]
        if not where:
            continue
        attempt, lo, hi, score, success = where[0]
        if features == 'debug_state':
            seen = truth.get(step_no)
        else:
            seen = None
            if len(frame_stamps):
                j = int(np.searchsorted(frame_stamps, stamp, side='right')) - 1
                if j >= 0:
                    fstamp = int(frame_stamps[j])
                    img = _image(*frames[fstamp])
                    h = homs.get(fstamp)
                    if img is not None and h is not None:
                        o = Observation(
                            step=i,
                            attempt=attempt,
                            time_s=0.0,
                            agent_position=np.array(agent_xy),
                            agent_velocity=np.zeros(2),
                            frames={camera: img},
                            table_to_image={camera: h},
                        )
                        seen = learning.locate(o)
        if seen is None:
            unseen += 1
        else:
            pose = seen
        if pose is None:
            continue
        target = seq[i + 1][3]
        if attempt != fmap_attempt:  # the policy's history starts afresh with each attempt
            fmap.reset()
            fmap_attempt = attempt
        obs.append(fmap(agent_xy, pose))
        fmap.commanded(target)
        act.append(learning.action_label(agent_xy, target))
        act_abs.append(target)
        agent.append(agent_xy)
        att.append(attempt)
        stp.append(i - lo)
        a_score.append(score)
        a_succ.append(success)
        last.append(i == hi - 1)
        stamps.append(stamp)
    if not obs:
        return None
    return TrialData(
        trial_id=str(meta.get('trial_id', Path(bag).name)),
        seed=int(meta.get('seed', -1)),
        policy_sha256=str(meta.get('policy_sha256', '')),
        success=any(b[4] for b in bounds),
        obs=np.array(obs),
        act=np.array(act),
        act_abs=np.array(act_abs, dtype=float),
        agent=np.array(agent, dtype=float),
        attempt=np.array(att),
        step=np.array(stp),
        attempt_score=np.array(a_score),
        attempt_success=np.array(a_succ),
        last_of_attempt=np.array(last),
        unseen=unseen,
        bag=str(bag),
        stamp_ns=np.array(stamps, dtype=np.int64),
    )


def build_dataset(
    bags,
    *,
    only_success: bool = True,
    successful_attempts_only: bool = False,
    features: str = 'camera',
    camera: str = 'top',
    feature_map: str = '',
    task: str | None = None,
) -> Dataset:
    """Aligned pairs from every bag (`bags`: a bag root, one bag, or a list of bag folders).

    only_success              keep trials whose verifier reported a success (behaviour cloning)
    successful_attempts_only  within those, keep only the steps of the successful attempt
    """
    ds = Dataset(features=features, feature_map=feature_map, task=task)
    for path in bag_paths(bags):
        try:
            trial = read_trial(path, features=features, camera=camera, feature_map=ds.feature_map, task=task)
        except Exception as exc:  # noqa: BLE001 - a broken bag is skipped with a note, never fatal
            if features == 'debug_state' and 'ground truth' in str(exc):
                raise
            continue
        if trial is None or (only_success and not trial.success):
            continue
        if successful_attempts_only:
            keep = trial.attempt_success
            if not keep.any():
                continue
            for name in (
                'obs',
                'act',
                'act_abs',
                'agent',
                'attempt',
                'step',
                'attempt_score',
                'attempt_success',
                'last_of_attempt',
                'stamp_ns',
            ):
                setattr(trial, name, getattr(trial, name)[keep])
        ds.trials.append(trial)
    return ds


# ------------------------------------------------------------------------------------------ LeRobot
def export_lerobot(ds: Dataset, root: str | Path, fps: int = 10, robot_type: str | None = None,
                   cameras: list[str] | None = None) -> Path:
    """Write `ds` as a LeRobot dataset, format v3.0 (LeRobot >= 0.4): meta/info.json, meta/stats.json,
    meta/tasks.parquet, meta/episodes/chunk-000/file-000.parquet (one row per episode: its length, its
    rows in the data file, its span in each video, its stats), data/chunk-000/file-000.parquet (every
    frame of every episode) and, for each of `cameras`, videos/observation.images.<camera>/chunk-000/
    file-000.mp4 (the episodes' frames back to back, taken from the trial bags at each step's stamp).

    One episode per trial; the task text, robot type and environment state come from the dataset's task
    (`task_learning(ds.task)`). Columns: observation.state (agent x, y), observation.environment_state
    (the task's camera-derived state), action (absolute safe command x, y, like LeRobot's datasets),
    timestamp, frame_index, episode_index, index, task_index, next.reward, next.done, next.success,
    plus enpire's attempt (int64).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    learning = task_learning(ds.task)
    lerobot_task, env_names = learning.lerobot_task, list(learning.environment_state_names)
    robot_type = robot_type or learning.lerobot_robot_type
    root = Path(root)
    for folder in ('meta/episodes/chunk-000', 'data/chunk-000'):
        (root / folder).mkdir(parents=True, exist_ok=True)
    features = {
        'observation.state': {'dtype': 'float32', 'shape': [2], 'names': ['x', 'y']},
        'observation.environment_state': {'dtype': 'float32', 'shape': [len(env_names)], 'names': env_names},
        'action': {'dtype': 'float32', 'shape': [2], 'names': ['x', 'y']},
        'timestamp': {'dtype': 'float32', 'shape': [1], 'names': None},
        'frame_index': {'dtype': 'int64', 'shape': [1], 'names': None},
        'episode_index': {'dtype': 'int64', 'shape': [1], 'names': None},
        'index': {'dtype': 'int64', 'shape': [1], 'names': None},
        'task_index': {'dtype': 'int64', 'shape': [1], 'names': None},
        'next.reward': {'dtype': 'float32', 'shape': [1], 'names': None},
        'next.done': {'dtype': 'bool', 'shape': [1], 'names': None},
        'next.success': {'dtype': 'bool', 'shape': [1], 'names': None},
        'attempt': {'dtype': 'int64', 'shape': [1], 'names': None},
    }
    videos = {f'observation.images.{c}': _EpisodeVideo(root, f'observation.images.{c}', c, fps)
              for c in cameras or []}
    columns: dict[str, list] = {k: [] for k in features}
    episodes: dict[str, list] = {}
    index = 0
    for ep, t in enumerate(ds.trials):
        n = len(t.obs)
        success = t.last_of_attempt & t.attempt_success
        done = np.zeros(n, bool)
        done[-1] = True
        cols = {
            'observation.state': t.agent.astype(np.float32),
            'observation.environment_state': learning.environment_state(t.obs).astype(np.float32),
            'action': t.act_abs.astype(np.float32),
            'timestamp': (np.arange(n) / fps).astype(np.float32),
            'frame_index': np.arange(n, dtype=np.int64),
            'episode_index': np.full(n, ep, np.int64),
            'index': np.arange(index, index + n, dtype=np.int64),
            'task_index': np.zeros(n, np.int64),
            'next.reward': success.astype(np.float32),
            'next.done': done,
            'next.success': success,
            'attempt': t.attempt.astype(np.int64),
        }
        for k, v in cols.items():
            columns[k].append(v)
        row = {'episode_index': ep, 'tasks': [lerobot_task], 'length': n,
               'data/chunk_index': 0, 'data/file_index': 0,
               'dataset_from_index': index, 'dataset_to_index': index + n,
               'meta/episodes/chunk_index': 0, 'meta/episodes/file_index': 0}
        for key, video in videos.items():
            start, stop = video.add_episode(t)
            row.update({f'videos/{key}/chunk_index': 0, f'videos/{key}/file_index': 0,
                        f'videos/{key}/from_timestamp': start, f'videos/{key}/to_timestamp': stop})
        for k, stat in _stats(cols).items():
            row.update({f'stats/{k}/{name}': value for name, value in stat.items()})
        row.update({'enpire/trial_id': t.trial_id, 'enpire/seed': t.seed,
                    'enpire/policy_sha256': t.policy_sha256, 'enpire/success': bool(t.success)})
        for k, v in row.items():
            episodes.setdefault(k, []).append(v)
        index += n
    merged = {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in columns.items()}
    data = pa.table({k: (pa.array(list(v), type=pa.list_(pa.float32(), v.shape[1])) if v.ndim == 2
                         else pa.array(v)) for k, v in merged.items()})
    pq.write_table(data, root / 'data' / 'chunk-000' / 'file-000.parquet')
    pq.write_table(pa.table(episodes), root / 'meta' / 'episodes' / 'chunk-000' / 'file-000.parquet')
    _write_tasks(root / 'meta' / 'tasks.parquet', [lerobot_task])
    for key, video in videos.items():
        features[key] = video.close()
    (root / 'meta' / 'stats.json').write_text(json.dumps(_stats(merged) if index else {}, indent=2))
    info = {
        'codebase_version': 'v3.0',
        'robot_type': robot_type,
        'total_episodes': len(ds.trials),
        'total_frames': index,
        'total_tasks': 1,
        'chunks_size': 1000,
        'data_files_size_in_mb': 100,
        'video_files_size_in_mb': 500,
        'fps': fps,
        'splits': {'train': f'0:{len(ds.trials)}'},
        'data_path': 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet',
        'video_path': 'videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4',
        'features': features,
    }
    (root / 'meta' / 'info.json').write_text(json.dumps(info, indent=2))
    return root


def _stats(cols: dict[str, np.ndarray]) -> dict[str, dict[str, list]]:
    stats = {}
    for k, v in cols.items():
        a = np.asarray(v, dtype=np.float64).reshape(len(v), -1)
        stats[k] = {'min': a.min(0).tolist(), 'max': a.max(0).tolist(), 'mean': a.mean(0).tolist(),
                    'std': a.std(0).tolist(), 'count': [len(v)]}
    return stats


def _write_tasks(path: Path, tasks: list[str]) -> None:
    """meta/tasks.parquet as LeRobot reads it with pandas: the task text is the index, task_index a column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({'task_index': pa.array(range(len(tasks)), pa.int64()), 'task': pa.array(tasks)})
    pandas_meta = {'index_columns': ['task'], 'column_indexes': [], 'columns': [
        {'name': 'task_index', 'field_name': 'task_index', 'pandas_type': 'int64', 'numpy_type': 'int64',
         'metadata': None},
        {'name': 'task', 'field_name': 'task', 'pandas_type': 'unicode', 'numpy_type': 'object',
         'metadata': None}], 'creator': {'library': 'pyarrow', 'version': pa.__version__},
        'pandas_version': '2.2.3'}
    pq.write_table(table.replace_schema_metadata({'pandas': json.dumps(pandas_meta)}), path)


class _EpisodeVideo:
    """One camera's mp4 of every episode back to back: each step shows the last frame at or before it."""

    def __init__(self, root: Path, key: str, camera: str, fps: int):
        self.path = root / 'videos' / key / 'chunk-000' / 'file-000.mp4'
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.camera, self.fps = camera, fps
        self.writer = None
        self.shape = (0, 0)
        self.frames = 0

    def add_episode(self, trial: TrialData) -> tuple[float, float]:
        import cv2

        start = self.frames / self.fps
        stamps, images = _camera_frames(trial.bag, self.camera)
        if not len(stamps):
            raise ValueError(f'{trial.bag}: no frames of camera {self.camera!r} to export')
        for stamp in trial.stamp_ns:
            j = max(0, int(np.searchsorted(stamps, stamp, side='right')) - 1)
            image = images[j]
            if self.writer is None:
                self.shape = image.shape[:2]
                self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*'mp4v'),
                                              float(self.fps), (self.shape[1], self.shape[0]))
            if image.shape[:2] != self.shape:
                image = cv2.resize(image, (self.shape[1], self.shape[0]))
            self.writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            self.frames += 1
        return start, self.frames / self.fps

    def close(self) -> dict:
        if self.writer is not None:
            self.writer.release()
        height, width = self.shape
        return {'dtype': 'video', 'shape': [height, width, 3], 'names': ['height', 'width', 'channels'],
                'info': {'video.height': height, 'video.width': width, 'video.codec': 'mpeg4',
                         'video.pix_fmt': 'yuv420p', 'video.is_depth_map': False, 'video.fps': self.fps,
                         'video.channels': 3, 'has_audio': False}}


def _camera_frames(bag: str, camera: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """A camera's recorded frames of one bag, by header stamp (ns), in stamp order."""
    from rosbags.rosbag2 import Reader

    from enpire_rollout.trial_bag import typestore

    store = typestore()
    found = {}
    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic.endswith(names.camera_image(camera))
                 or c.topic.endswith(names.camera_image(camera) + '/compressed')]
        for conn, _t, raw in reader.messages(connections=conns):
            msg = store.deserialize_cdr(raw, conn.msgtype)
            image = _image(msg, conn.msgtype)
            if image is not None:
                found[_ns(msg.header.stamp)] = image
    order = sorted(found)
    return np.array(order, dtype=np.int64), [found[k] for k in order]


__all__ = [
    'Dataset',
    'TrialData',
    'build_dataset',
    'read_trial',
    'bag_paths',
    'export_lerobot',
    'FEATURE_VARIANTS',
]
