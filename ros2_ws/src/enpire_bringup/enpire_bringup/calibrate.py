"""`enpire calibrate`: a camera's intrinsics and its pose in the table frame from a ChArUco board.

    # intrinsics from views of the board held at several distances and tilts, pose from one image of
    # the board lying on the table with its first corner at (0.10, 0.12) m of the table frame:
    enpire calibrate --camera top --images views/ --pose-image on_table.png --board-at 0.10 0.12 \
        --out ~/.config/enpire/calibration/top.yaml
    # the same from a camera topic, in two steps (wave the board, then lay it on the table):
    enpire calibrate --camera top --topic /top_camera/color/image_raw --views 15 --out top_intrinsics.yaml
    enpire calibrate --camera top --topic /top_camera/color/image_raw --intrinsics top_intrinsics.yaml \
        --board-at 0.10 0.12 --out ~/.config/enpire/calibration/top.yaml

The output is one YAML per camera in the ROS camera_info conventions plus `table_transform` (see
enpire_env.calibration.calibration_file); the real-cell bringup's `camera_calibration` node loads it.
Without a pose (no --pose-image, or views taken from the topic) only the intrinsics are written.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

from enpire_env.calibration import calibration_file
from enpire_env.calibration.camera_model import Intrinsics, Pose
from enpire_env.calibration.charuco import (
    BoardSpec,
    Detection,
    calibrate_camera,
    calibrate_intrinsics,
    detect,
    same_view,
    table_from_board,
)

IMAGE_SUFFIXES = {'.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff'}
DISTINCT_VIEW = 0.02   # a view taken from a topic moved its board by this share of the image's larger side


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--camera', required=True, help="the cell's camera name (frame <camera>_optical_frame)")
    src = p.add_argument_group('where the board is seen')
    src.add_argument('--images', type=Path, help='a folder of views of the board for the intrinsics')
    src.add_argument('--topic', help='a sensor_msgs/Image topic to take the views (or the pose) from')
    src.add_argument('--pose-image', type=Path, help='an image of the board lying on the table')
    src.add_argument('--intrinsics', type=Path,
                     help='a camera_info YAML to use instead of estimating the intrinsics')
    src.add_argument('--views', type=int, default=15, help='--topic: views of the board to collect')
    src.add_argument('--period', type=float, default=0.5, help='--topic: seconds between collected views')
    src.add_argument('--timeout', type=float, default=120.0, help='--topic: give up after this long (s)')
    board = p.add_argument_group('the board (as printed)')
    board.add_argument('--squares', type=int, nargs=2, default=(7, 5), metavar=('X', 'Y'))
    board.add_argument('--square-m', type=float, default=0.04, help='side of a square, metres')
    board.add_argument('--marker-m', type=float, default=0.03, help='side of a marker, metres')
    board.add_argument('--dictionary', default='DICT_5X5_100', help='cv2.aruco dictionary name')
    board.add_argument('--board-at', type=float, nargs=2, default=(0.0, 0.0), metavar=('X', 'Y'),
                       help="table-frame position (m) of the board's first outer corner when on the table")
    board.add_argument('--board-yaw-deg', type=float, default=0.0, help="the board's turn about table z")
    p.add_argument('--model', default='plumb_bob', choices=('plumb_bob', 'rational_polynomial'))
    p.add_argument('--out', type=Path, required=True, help='the calibration YAML to write')
    p.set_defaults(func=run)


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f'cannot read an image from {path}')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def folder_views(folder: Path, exclude: Path | None) -> list[np.ndarray]:
    if not folder.is_dir():
        raise ValueError(f'{folder} is not a folder of images')
    skip = exclude.resolve() if exclude else None
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.resolve() != skip)
    if not files:
        raise ValueError(f'no images ({", ".join(sorted(IMAGE_SUFFIXES))}) in {folder}')
    return [read_image(f) for f in files]


def topic_views(topic: str, spec: BoardSpec, count: int, period: float, timeout: float) -> list[np.ndarray]:
    """`count` frames of `topic` in which the board is seen, at least `period` s apart, each a view of its
    own: a frame whose board moved less than DISTINCT_VIEW (of the image size) from a kept view is
    skipped (a board held still; on a busy machine the same frame of a stream can come round twice, and
    a calibration weighted twice on one pose is measurably worse)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from enpire_bringup.adapters.image_convert import to_rgb8

    views: list[np.ndarray] = []
    kept: list[Detection] = []
    last = [-np.inf]

    def on_image(msg):
        now = time.monotonic()
        if len(views) >= count or now - last[0] < period:
            return
        try:
            rgb = to_rgb8(msg)
        except ValueError as exc:
            print(f'calibrate: {exc}', file=sys.stderr)
            return
        found = detect(spec, rgb)
        if found is not None and not any(same_view(found, view, DISTINCT_VIEW * max(rgb.shape[:2]))
                                         for view in kept):
            kept.append(found)
            views.append(rgb)
            last[0] = now
            print(f'calibrate: view {len(views)}/{count}', flush=True)

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node('enpire_calibrate', context=context)
        node.create_subscription(Image, topic, on_image, qos_profile_sensor_data)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + timeout
        while len(views) < count and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
    if len(views) < count:
        raise ValueError(f'saw the board in {len(views)} distinct views on {topic} within {timeout:.0f} s, '
                         f'wanted {count} (move the board between views)')
    return views


def run(args) -> int:
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f'enpire calibrate: {exc}', file=sys.stderr)
        return 2


def _run(args) -> int:
    spec = BoardSpec(squares_x=args.squares[0], squares_y=args.squares[1], square_m=args.square_m,
                     marker_m=args.marker_m, dictionary=args.dictionary)
    if args.images and args.topic:
        raise ValueError('give --images or --topic, not both')
    if args.images and args.intrinsics:
        raise ValueError('--images are views for estimating intrinsics; with --intrinsics give the board on '
                         'the table as --pose-image (or --topic)')
    report: dict = {'date': time.strftime('%Y-%m-%dT%H:%M:%S%z')}
    pose_image = read_image(args.pose_image) if args.pose_image else None
    if args.intrinsics:
        intrinsics = calibration_file.load_intrinsics(args.intrinsics)
        report['intrinsics_from'] = str(args.intrinsics)
        if pose_image is None and args.topic:
            pose_image = topic_views(args.topic, spec, 1, 0.0, args.timeout)[0]
    else:
        if args.images:
            views = folder_views(args.images, args.pose_image)
        elif args.topic:
            views = topic_views(args.topic, spec, args.views, args.period, args.timeout)
        else:
            raise ValueError('no views: give --images DIR or --topic TOPIC (or --intrinsics FILE)')
        result = calibrate_intrinsics(spec, views, model=args.model)
        intrinsics = result.intrinsics
        report.update(views=result.views, views_without_board=result.skipped,
                      reprojection_rms_px=round(result.rms_px, 4))
        print(f'intrinsics: board found in {result.views} of {result.views + result.skipped} views, '
              f'reprojection RMS {result.rms_px:.3f} px')
    k = intrinsics.matrix
    print(f'  fx {k[0, 0]:.2f}  fy {k[1, 1]:.2f}  cx {k[0, 2]:.2f}  cy {k[1, 2]:.2f}  '
          f'{intrinsics.distortion_model} {np.round(intrinsics.coefficients, 5).tolist()}')
    if pose_image is None:
        path = save_intrinsics(args.camera, intrinsics, args.out, report)
        print(f'no pose image: wrote the intrinsics only to {path}; run again with --intrinsics {path} and '
              'the board lying on the table (--pose-image or --topic)')
        return 0
    board_in_table = table_from_board(*args.board_at, yaw_deg=args.board_yaw_deg)
    cal = calibrate_camera(args.camera, spec, intrinsics, pose_image, board_in_table, report)
    pose = cal.table_from_optical
    print(f"pose: {cal.report['pose_corners']} corners, reprojection RMS "
          f"{cal.report['pose_reprojection_rms_px']:.3f} px; camera at "
          f'{np.round(pose.translation, 4).tolist()} m in {cal.parent_frame!r}, '
          f'quaternion (x, y, z, w) {np.round(pose.quaternion(), 4).tolist()}')
    print(f'wrote {calibration_file.save(cal, args.out)}')
    return 0


def save_intrinsics(camera: str, intrinsics: Intrinsics, path: Path, report: dict) -> Path:
    """A camera_info YAML without a pose (what --intrinsics reads back)."""
    data = {key: value for key, value in calibration_file.to_yaml_dict(calibration_file.CameraCalibration(
        camera=camera, intrinsics=intrinsics, table_from_optical=Pose.identity(), report=report)).items()
        if key != 'table_transform'}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
    return path
