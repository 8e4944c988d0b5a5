"""Key frames come from the trial's bag, written here by the project's own TrialBag writer."""
import cv2
import numpy as np
import pytest

from enpire_agents import bag_evidence
from enpire_rollout.trial_outcome import TrialOutcome


def _decode(png: bytes) -> np.ndarray:
    assert png.startswith(b'\x89PNG\r\n\x1a\n')
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize('compression', ['', 'png', 'jpeg'])
def test_the_key_frame_is_the_last_top_camera_frame_of_the_bag(tmp_path, record_bag, compression):
    path, last = record_bag(tmp_path, f'trial_{compression or "raw"}', [10, 20, 30, 40], compression)
    frame = _decode(bag_evidence.last_frame_png(path))
    assert frame.shape == last.shape
    if compression == 'jpeg':     # lossy: the frame's number survives, not every pixel
        assert abs(int(np.median(frame[..., 0])) - 40) <= 3
    else:
        assert np.array_equal(frame, last)


def test_no_bag_or_no_such_camera_gives_no_frame(tmp_path, record_bag):
    path, _ = record_bag(tmp_path, 'trial', [10])
    assert bag_evidence.last_frame_png(tmp_path / 'missing') is None
    assert bag_evidence.last_frame_png(path, camera='wrist') is None
    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'metadata.yaml').write_text('not: a bag\n')
    assert bag_evidence.last_frame_png(broken) is None


def test_key_frames_come_from_the_failed_recorded_rollouts_in_order(tmp_path, record_bag):
    failed_a, _ = record_bag(tmp_path, 'a', [11])
    solved, _ = record_bag(tmp_path, 'b', [22])
    failed_c, _ = record_bag(tmp_path, 'c', [33])

    def rollout(seed, bag, success):
        return TrialOutcome(seed=seed, attempts=2, attempt_scores=[0.3, 0.9],
                              attempt_successes=[False, success], attempt_reasons=['short', 'x'],
                              bag_path=str(bag))
    rollouts = [rollout(1, failed_a, False), rollout(2, solved, True), rollout(3, '', False),
                rollout(4, failed_c, False)]
    frames = bag_evidence.key_frames(rollouts)
    assert [int(_decode(f)[5, 5, 0]) for f in frames] == [11, 33]
    assert len(bag_evidence.key_frames(rollouts, limit=1)) == 1
