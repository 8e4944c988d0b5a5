"""sensor_msgs/Image <-> numpy without cv_bridge (PyPI's cv-bridge is ROS 1 code). Pure: no rclpy.

Works on any object with the Image fields (height, width, encoding, is_bigendian, step, data), so it is
testable without ROS. `to_rgb8` returns an HxWx3 uint8 RGB array from the common camera encodings.
"""
from __future__ import annotations

import numpy as np

_CHANNELS = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1, '8UC1': 1, '8UC3': 3,
             'mono16': 1, '16UC1': 1}


def to_array(msg) -> np.ndarray:
    """The image as an HxWxC array of its own dtype (row padding of `step` removed)."""
    encoding = msg.encoding
    if encoding not in _CHANNELS:
        raise ValueError(f'unsupported image encoding {encoding!r} (supported: {sorted(_CHANNELS)})')
    channels = _CHANNELS[encoding]
    wide = encoding in ('mono16', '16UC1')
    dtype = np.dtype('>u2' if msg.is_bigendian else '<u2') if wide else np.dtype(np.uint8)
    row_bytes = msg.width * channels * dtype.itemsize
    step = msg.step or row_bytes
    if step < row_bytes or len(msg.data) < step * msg.height:
        raise ValueError(f'image data too short: {len(msg.data)} bytes for {msg.height} rows of step {step}')
    data = bytes(msg.data) if isinstance(msg.data, list | tuple) else msg.data   # buffers pass as they are
    raw = np.frombuffer(data, dtype=np.uint8, count=step * msg.height)
    rows = raw.reshape(msg.height, step)[:, :row_bytes]
    return np.ascontiguousarray(rows).view(dtype).reshape(msg.height, msg.width, channels)


def to_rgb8(msg) -> np.ndarray:
    array = to_array(msg)
    encoding = msg.encoding
    if encoding in ('rgb8', '8UC3'):
        return array
    if encoding == 'bgr8':
        return np.ascontiguousarray(array[:, :, ::-1])
    if encoding == 'rgba8':
        return np.ascontiguousarray(array[:, :, :3])
    if encoding == 'bgra8':
        return np.ascontiguousarray(array[:, :, 2::-1])
    if encoding in ('mono16', '16UC1'):   # depth or 16-bit mono: scale the frame's range to 0..255
        wide = array[:, :, 0].astype(np.float32)
        top = float(wide.max()) or 1.0
        array = (wide * (255.0 / top)).astype(np.uint8)[:, :, None]
    return np.repeat(array, 3, axis=2)


def fill_rgb8(msg, rgb: np.ndarray):
    """Write an HxWx3 uint8 RGB array into an Image message (header left to the caller)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'expected HxWx3, got {rgb.shape}')
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = 'rgb8'
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    msg.data = rgb.tobytes()
    return msg
