"""`enpire audit BAG|DIR`: re-run the verifier core on the recorded frames, compare with recorded verdicts.

For every recorded verdict, the frames of each camera recorded at or before the verdict are judged again
with `enpire_env.verification.Verifier`; the table lists recorded vs re-computed success and score, and
disagreements are listed. One mp4 per camera is exported with cv2.VideoWriter at the rate the camera was
recorded (frames over the recorded span), so the video plays in real time.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
from enpire_common import names
from pydantic import BaseModel
from rosbags.rosbag2 import Reader

from enpire_env.calibration.table_mapping import DEFAULT_TABLE_PIXEL_M, CalibratedCameras
from enpire_rollout.trial_bag import typestore
from enpire_rollout.trial_core import header_stamp_ns, image_to_array


class AuditRow(BaseModel):
    bag: str
    index: int
    recorded_success: bool
    recorded_score: float
    audit_success: bool
    audit_score: float
    agree: bool


def recorded_rates(reader: Reader) -> dict[str, float]:
    """Frames per second of cell time of each recorded camera: (frames - 1) over the span of their capture
    stamps (the log time is when the recorder took them, which a lockstep cell compresses or stretches)."""
    stamps: dict[str, list[int]] = {}
    images = [c for c in reader.connections if c.topic.endswith('/image_raw')]
    for conn, _, raw in reader.messages(connections=images):
        stamps.setdefault(conn.topic.split('/')[-2], []).append(header_stamp_ns(raw))
    rates = {}
    for cam, times in stamps.items():
        span = (max(times) - min(times)) * 1e-9
        rates[cam] = (len(times) - 1) / span if len(times) > 1 and span > 0 else 1.0
    return rates


def frame_at(frames: dict[int, object], stamp_ns: int):
    """The frame captured at `stamp_ns`, else the last one captured before it (None: none yet)."""
    if stamp_ns in frames:
        return frames[stamp_ns]
    before = [t for t in frames if t <= stamp_ns]
    return frames[max(before)] if before else None


def camera_frames(calibrated: CalibratedCameras, frames: dict, images: dict, task_frame: str
                  ) -> tuple[dict, dict | None]:
    """Frames for a judge that needs its camera's calibrated model (a 3-D task), as the verify node gives
    them: the recorded image (undistorted where the lens distorts) with the camera's model in the task's
    frame, and the layout the reset placed (`placed/<object>` on /tf_static). A camera the bag holds no
    calibration for keeps its frame: judged 'no_calibration', never guessed."""
    from enpire_env.verification import Frame

    out = {}
    for cam, frame in frames.items():
        known = calibrated.camera_model(cam, task_frame) if frame is not None else None
        if known is None:
            out[cam] = frame
            continue
        model, undistort = known
        image = images.get(id(frame), frame.image)
        out[cam] = Frame(undistort(image) if undistort is not None else image, None, frame.stamp, model)
    return out, calibrated.placed(task_frame) or None


def audit_bag(bag: str | Path, video_dir: str | Path | None = None, video: bool = True,
              score_tolerance: float = 0.05, table_pixel_m: float = DEFAULT_TABLE_PIXEL_M
              ) -> tuple[list[AuditRow], dict[str, str]]:
    """Re-judge every recorded verdict from the recorded frames. A frame is mapped by the homography
    recorded with it or, for a cell that publishes none (a real cell), by the cameras' calibration the bag
    holds (/tf_static and CameraInfo), undistorted as the verify node does."""
    from enpire_env.verification import Frame, Verifier

    store = typestore()
    verifiers: dict[str, Verifier] = {}   # one per task the bag's verdicts name
    calibrated = CalibratedCameras(table_pixel_m)
    bag = Path(bag)
    latest: dict[str, Frame] = {}
    by_stamp: dict[str, dict[int, Frame]] = {}    # camera -> its frames by capture stamp
    pending: list[tuple[object, int]] = []         # the recorded verdicts, judged once every frame is read
    homs: dict[str, np.ndarray] = {}
    images: dict[int, np.ndarray] = {}            # a mapped frame's image as recorded (for a 3-D judge)
    writers: dict[str, cv2.VideoWriter] = {}
    videos: dict[str, str] = {}
    rows: list[AuditRow] = []
    out_dir = Path(video_dir) if video_dir else bag
    with Reader(bag) as reader:
        rates = recorded_rates(reader) if video else {}
        for conn, stamp, raw in reader.messages():
            topic = conn.topic
            if topic == names.TF_STATIC:
                calibrated.add_transforms(store.deserialize_cdr(raw, conn.msgtype))
            elif topic.endswith('/camera_info'):
                try:
                    calibrated.set_camera_info(topic.split('/')[-2], store.deserialize_cdr(raw, conn.msgtype))
                except ValueError:   # a CameraInfo without intrinsics maps nothing
                    pass
            elif topic.endswith('/table_homography'):
                cam = topic.split('/')[-2]
                homs[cam] = np.asarray(store.deserialize_cdr(raw, conn.msgtype).table_to_image).reshape(3, 3)
                if cam in latest:
                    latest[cam] = Frame(latest[cam].image, homs[cam], latest[cam].stamp)
                    by_stamp[cam][round(latest[cam].stamp * 1e9)] = latest[cam]
            elif topic.endswith('/image_raw'):
                cam = topic.split('/')[-2]
                msg = store.deserialize_cdr(raw, conn.msgtype)
                image = image_to_array(msg.height, msg.width, msg.encoding, msg.data)
                captured = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                latest[cam] = Frame(*calibrated.map_frame(cam, image, homs.get(cam)), captured * 1e-9)
                images[id(latest[cam])] = image
                by_stamp.setdefault(cam, {})[captured] = latest[cam]
                if video:
                    if cam not in writers:
                        out_dir.mkdir(parents=True, exist_ok=True)
                        videos[cam] = str(out_dir / f'{bag.name}_{cam}.mp4')
                        writers[cam] = cv2.VideoWriter(videos[cam], cv2.VideoWriter_fourcc(*'mp4v'),
                                                       rates[cam], (msg.width, msg.height))
                    writers[cam].write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            elif topic.endswith('/trial/verdicts'):
                # Judged after the whole bag is read: the frames a verdict names may be logged after it.
                pending.append((store.deserialize_cdr(raw, conn.msgtype), stamp))
    for recorded, stamp in pending:
        cams = [c.camera for c in recorded.cameras] or list(by_stamp)
        now = recorded.header.stamp.sec + recorded.header.stamp.nanosec * 1e-9 or stamp * 1e-9
        # The frames the verdict names (its cameras' capture stamps), else each camera's last one by then.
        named = {c.camera: c.frame_stamp.sec * 1_000_000_000 + c.frame_stamp.nanosec
                 for c in recorded.cameras}
        frames = {c: frame_at(by_stamp.get(c, {}), named.get(c) or round(now * 1e9)) for c in cams}
        verifier = verifiers.get(recorded.task) or verifiers.setdefault(recorded.task,
                                                                        Verifier(recorded.task))
        if getattr(verifier.judge_frame, 'needs', 'homography') == 'camera':
            # A 3-D task's judge: each frame with its camera's model in the task's frame and the layout the
            # reset placed, both from the bag's /tf_static and CameraInfo (as the verify node builds them).
            frames, layout = camera_frames(calibrated, frames, images, verifier.task.action.frame)
            fused, _ = verifier.verify_frames(frames, cameras=cams, now=now, max_age=1e9, layout=layout)
        else:
            fused = verifier.verify(frames, cameras=cams, now=now, max_age=1e9)
        audit_success = bool(fused.state == 0)
        score = float(getattr(fused, 'score', 0.0))
        rows.append(AuditRow(bag=bag.name, index=len(rows), recorded_success=bool(recorded.success),
                             recorded_score=float(recorded.score), audit_success=audit_success,
                             audit_score=score, agree=audit_success == bool(recorded.success)
                             and abs(score - float(recorded.score)) <= score_tolerance))
    for w in writers.values():
        w.release()
    return rows, videos


def main_audit(path: str, video_dir: str | None = None, video: bool = True) -> int:
    root = Path(path)
    if not root.exists():
        print(f'enpire audit: no such bag or folder: {root}', file=sys.stderr)
        return 2
    if (root / 'metadata.yaml').exists():
        bags = [root]
    else:
        bags = sorted(p.parent for p in root.glob('*/metadata.yaml'))
    if not bags:
        print(f'enpire audit: no trial bags in {root} (a bag is a folder with a metadata.yaml)',
              file=sys.stderr)
        return 2
    all_rows, disagreements = [], []
    print(f"{'bag':40s} {'#':>3s} {'recorded':>14s} {'audit':>14s} agree")
    for bag in bags:
        rows, videos = audit_bag(bag, video_dir, video)
        for r in rows:
            print(f'{r.bag[:40]:40s} {r.index:3d} {str(r.recorded_success):>6s} {r.recorded_score:7.3f} '
                  f'{str(r.audit_success):>6s} {r.audit_score:7.3f} {"yes" if r.agree else "NO"}')
            all_rows.append(r)
            if not r.agree:
                disagreements.append(r)
        for cam, file in videos.items():
            print(f'  video {cam}: {file}')
    print(json.dumps({'verdicts': len(all_rows), 'disagreements': [d.model_dump() for d in disagreements]}))
    return 1 if disagreements else 0
