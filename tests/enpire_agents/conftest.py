"""Shared fixtures of the agents' tests."""
import numpy as np
import pytest

from enpire_rollout.trial_bag import TrialBag, TrialRecordConfig, typestore


def _image(store, value: int, stamp_ns: int, h=12, w=16):
    T = store.types
    header = T['std_msgs/msg/Header'](stamp=T['builtin_interfaces/msg/Time'](sec=stamp_ns // 10**9,
                                                                               nanosec=stamp_ns % 10**9),
                                      frame_id='top')
    pixels = np.zeros((h, w, 3), dtype=np.uint8)
    pixels[..., 0] = value        # red carries the frame's number
    pixels[0, 0] = (1, 2, 3)      # and one pixel the channel order
    return T['sensor_msgs/msg/Image'](header=header, height=h, width=w, encoding='rgb8', is_bigendian=0,
                                      step=w * 3, data=pixels.reshape(-1)), pixels


def _record_bag(root, trial_id, values, compression='', cameras=('top', 'oblique')):
    store = typestore()
    bag = TrialBag(root, trial_id, 'cell_0', {'trial_id': trial_id, 'seed': 1},
                   TrialRecordConfig(cameras=list(cameras), image_compression=compression))
    bag.open()
    t0 = 1_000_000_000
    last = None
    for i, value in enumerate(values):
        stamp = t0 + i * 100_000_000
        msg, last = _image(store, value, stamp)
        cdr = bytes(store.serialize_cdr(msg, 'sensor_msgs/msg/Image'))
        bag.write_camera('top', cdr, stamp)
        other, _ = _image(store, 250, stamp + 1)          # another camera, later: never the key frame
        other_cdr = bytes(store.serialize_cdr(other, 'sensor_msgs/msg/Image'))
        bag.write_camera('oblique', other_cdr, stamp + 1)
    return bag.close('finished'), last


@pytest.fixture
def record_bag():
    """`record_bag(root, trial_id, values, compression='')` -> (bag path, the last top frame): a trial bag
    written by the project's TrialBag with one top-camera frame per value (its red channel) and an
    oblique frame after each."""
    return _record_bag
