"""The peg detector's dataset (`Task.verifier.dataset`): rendered frames labelled from MuJoCo's segmentation
render, written as YOLO-seg polygons that give the masks back; and the judge's learned-mask path, fed the
exact masks a perfect segmenter would give, never says SUCCESS where metaworld's rule says no."""
import ctypes.util

import cv2
import numpy as np
import pytest
from enpire_common.task import resolve
from enpire_task_peg.perception.dataset import CLASSES, piece_polygons, polygon_mask, write_dataset
from enpire_task_peg.render import CAMERA_NAMES, CellCameras
from enpire_task_peg.simulator import BOX, PEG_HEAD, PegSimulator, obj_to_target, sample_layout
from enpire_task_peg.task import TASK
from enpire_task_peg.verification.colour import ColourConfig, hsv, peg_mask
from enpire_task_peg.verification.verifier import PegJudge
from metaworld.policies.sawyer_peg_insertion_side_v3_policy import SawyerPegInsertionSideV3Policy

from enpire_env.verification import Frame, Verifier, load_config
from enpire_env.verification.models import Box, VerdictState

pytestmark = pytest.mark.skipif(ctypes.util.find_library('EGL') is None,
                                reason='libEGL is absent (scripts/setup.sh installs it)')


def iou(a, b) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0     # both empty: the same


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp('peg_dataset')
    return out, write_dataset(out, n_images=24, seed=5, fault_fraction=0.3)


def test_the_task_names_its_dataset_writer():
    assert resolve(TASK.verifier.dataset) is write_dataset
    assert tuple(load_config(TASK).labels) == CLASSES


def test_the_dataset_is_written_in_ultralytics_layout_with_a_card(dataset):
    out, card = dataset
    assert card['classes'] == ['peg', 'box'] and card['counts']['frames'] == 24
    assert set(card['counts']['per_camera']) == set(CAMERA_NAMES)
    for split, n in card['counts']['per_split'].items():
        images = sorted((out / 'images' / split).glob('*.png'))
        labels = sorted((out / 'labels' / split).glob('*.txt'))
        assert len(images) == len(labels) == n
        assert [p.stem for p in images] == [p.stem for p in labels]
    assert 'names:' in (out / 'data.yaml').read_text()
    for path in (out / 'labels').rglob('*.txt'):
        for line in path.read_text().splitlines():
            cls, *xy = line.split()
            assert int(cls) in (0, 1) and len(xy) >= 6 and len(xy) % 2 == 0
            assert all(0.0 <= float(v) <= 1.0 for v in xy)


def test_a_state_pool_draws_the_frames_from_more_layouts(dataset, tmp_path):
    # the fixture's 8 states come from a pool of 64, within the first layout's ~140; a pool 40 times the
    # states spans three layouts
    assert dataset[1]['state_pool'] == 8 and dataset[1]['counts']['layouts'] == 1
    card = write_dataset(tmp_path / 'pooled', n_images=30, seed=5, fault_fraction=0.0, state_pool=40)
    assert card['state_pool'] == 40 and card['counts']['layouts'] >= 2


def labelled(mask):
    """The pieces of a mask a label is written for (3 pixels or more)."""
    count, pieces = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    sizes = np.bincount(pieces.ravel(), minlength=count)
    return mask & (sizes[pieces] >= 3)


def test_labels_give_the_segmentation_masks_back_and_match_the_pegs_colour():
    """Polygons traced at 4x give MuJoCo's masks back (the pixels whose centres they cover; pieces under 3
    pixels, such as the box's slivers between the arm's links, get no label); the peg's label covers its
    green pixels."""
    sim = PegSimulator()
    obs = sim.reset(sample_layout(4))
    expert = SawyerPegInsertionSideV3Policy()
    for _ in range(60):
        obs, _ = sim.step(expert.get_action(obs))
    cams = CellCameras(sim.model, 96, 96)
    try:
        for name in CAMERA_NAMES:
            masks = cams.segmentation(sim.data, name)
            for label in CLASSES:
                back = polygon_mask(piece_polygons(masks[label]), 96, 96)
                assert iou(back, labelled(masks[label])) >= 0.97, (name, label)
            colour = peg_mask(hsv(cams.rgb(sim.data, name)), ColourConfig())
            assert iou(polygon_mask(piece_polygons(masks['peg']), 96, 96), colour) >= 0.9, name
    finally:
        cams.close()
        sim.close()
    two = np.zeros((20, 20), bool)
    two[2:6, 2:12] = two[10:14, 4:9] = True
    two[0, 19] = True                                   # one pixel: under min_piece_px, no label
    assert len(piece_polygons(two)) == 2


class MuJoCoMasks:
    """A perfect segmenter: MuJoCo's segmentation render of the state the frame shows (the upper bound a
    trained detector approaches), as the Detector and Segmenter a learned backend is."""

    def __init__(self, cams, sim, bleed: bool = False):
        self.cams, self.sim, self.names, self.bleed = cams, sim, {}, bleed

    def detect(self, image):
        mask = self.cams.segmentation(self.sim.data, self.names[id(image)])['peg']
        if not mask.any():
            return []
        rows, cols = np.nonzero(mask)
        return [Box(label='peg', x0=int(cols.min()), y0=int(rows.min()), x1=int(cols.max()) + 1,
                    y1=int(rows.max()) + 1, score=1.0)]

    def segment(self, image, boxes):
        mask = self.cams.segmentation(self.sim.data, self.names[id(image)])['peg']
        if self.bleed:      # a learned mask's edge: a pixel beyond the peg's on its left and lower sides
            mask = cv2.dilate(mask.astype(np.uint8), np.array([[0, 0, 0], [0, 1, 1], [0, 1, 0]], np.uint8))
        return {b.label: mask.astype(np.float32) for b in boxes}


@pytest.mark.parametrize('bleed', [False, True], ids=['exact', 'bled'])
def test_the_learned_mask_path_never_says_success_where_metaworld_says_no(bleed):
    """Exact masks, and masks whose edge strays a pixel beyond the peg's (as a trained segmenter's do): the
    silhouette fit allows a learned edge `learned_edge_pixels`, so the views still measure the peg."""
    sim = PegSimulator()
    obs = sim.reset(sample_layout(2))
    expert = SawyerPegInsertionSideV3Policy()
    cams = CellCameras(sim.model, 96, 96)
    perfect = MuJoCoMasks(cams, sim, bleed)
    verifier = Verifier(TASK, load_config(TASK, overrides={'max_age_s': 1.0}))
    verifier.judge_frame = PegJudge(verifier.config, perfect, perfect)
    assert verifier.judge_frame.learned and verifier.judge_frame.judge.end_pixels == 3.0
    assert verifier.judge_frame.judge.silhouette.edge_pixels == 0.75
    models = {name: cams.camera_model(name) for name in CAMERA_NAMES}
    said = {VerdictState.SUCCESS: 0, VerdictState.FAILURE: 0, VerdictState.UNCERTAIN: 0}
    try:
        actions = [None] * 200 + [np.array([0.3, 0.0, 0.0, 0.6])] * 30      # in, then pulled back out
        for step, action in enumerate(actions):
            obs, _ = sim.step(expert.get_action(obs) if action is None else action)
            if step % 5:
                continue
            state = sim.task_state()
            frames = {}
            for name in CAMERA_NAMES:
                image = cams.rgb(sim.data, name)
                perfect.names[id(image)] = name
                frames[name] = Frame(image, None, 10.0, models[name])
            fused = verifier.verify(frames, cameras=CAMERA_NAMES, now=10.0,
                                    layout={'peg': sim.layout.peg, 'box': sim.layout.box})
            assert not (fused.success and obj_to_target(state[PEG_HEAD], state[BOX]) > 0.07)
            said[fused.state] += 1
    finally:
        cams.close()
        sim.close()
    assert said[VerdictState.SUCCESS] >= 1 and said[VerdictState.FAILURE] >= 1, said
