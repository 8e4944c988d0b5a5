"""The verification framework judges any task through its contract: the task's judge, settings and fusion
settings (Task.verifier), backends by name without an import circle, evidence; shown on a toy task that
is not Push-T (toy_task.py)."""
import json
import subprocess
import sys

import numpy as np
import pytest
from enpire_common.task_registry import UnknownTask

from enpire_env.verification import Frame, VerdictState, Verifier, load_config, make_backend, register_backend
from enpire_env.verification.evidence import save_evidence
from tests.enpire_env.verification import toy_task
from tests.enpire_env.verification.toy_task import RedJudge, RedSettings, image

S, F, U = VerdictState.SUCCESS, VerdictState.FAILURE, VerdictState.UNCERTAIN
H = np.eye(3)


def test_settings_come_from_the_tasks_file_with_its_fusion_settings_as_defaults(tmp_path):
    task = toy_task.task(fusion_rule='majority', min_cameras=2, lone_margin_factor=2.0)
    config = load_config(task)
    assert isinstance(config, RedSettings)
    assert config.threshold == 0.4                                        # from red_task.yaml
    fusion = config.fusion
    assert (fusion.rule, fusion.min_cameras, fusion.lone_margin_factor) == ('majority', 2, 2.0)   # the spec
    assert fusion.success_confidence == 0.5                               # the file's section overrides
    other = tmp_path / 'other.yaml'
    other.write_text('threshold: 0.7\nmargin: 0.05\n')                    # a whole file, no section
    config = load_config(task, other, overrides={'margin': 0.2})
    assert (config.threshold, config.margin, config.fusion.success_confidence) == (0.7, 0.2, 0.4)


def test_the_verifier_judges_with_the_tasks_judge_and_fuses():
    verifier = Verifier(toy_task.task())
    assert isinstance(verifier.judge_frame, RedJudge) and verifier.judge_frame.threshold == 0.4
    red = {'a': Frame(image(0.8), H, 1.0), 'b': Frame(image(0.75), H, 1.0)}
    fused, judged = verifier.verify_frames(red, now=1.1)
    assert fused.success and fused.state == S, fused
    assert judged['a'].judgement.estimate == [pytest.approx(0.8)]          # the task-state vector
    assert judged['a'].judgement.details == {'red_share': pytest.approx(0.8)}
    assert 'red' in judged['a'].masks
    white = {'a': Frame(image(0.1), H, 1.0), 'b': Frame(image(0.0), H, 1.0)}
    assert verifier.verify(white, now=1.1).state == F
    # A camera that saw nothing usable stays an explicit UNCERTAIN; one on each side of the threshold
    # never adds up to success.
    black = np.zeros((40, 40, 3), np.uint8)
    out = verifier.verify({'a': Frame(image(0.8), H, 1.0), 'b': Frame(black, H, 1.0)},
                          cameras=['a', 'b', 'c'], now=1.1)
    reasons = {c.camera: c.reason for c in out.cameras}
    assert reasons == {'a': '', 'b': 'no_frame', 'c': 'no_frame'} and out.success
    assert verifier.verify({'a': Frame(image(0.8), H, 1.0), 'b': Frame(image(0.1), H, 1.0)}).state == U
    stale = verifier.verify({'a': Frame(image(0.8), H, 0.0)}, now=10.0, max_age=0.5)
    assert stale.state == U and stale.cameras[0].reason == 'stale_frame'
    assert verifier.verify({'a': Frame(image(0.8), None, 1.0)}).cameras[0].reason == 'no_homography'


def test_a_verifier_judges_its_own_task_only():
    verifier = Verifier(toy_task.task())
    with pytest.raises(ValueError, match="judges task 'red', not 'pusht'"):
        verifier.verify({'a': Frame(image(0.8), H, 1.0)}, task='pusht')
    with pytest.raises(UnknownTask, match='known tasks'):
        Verifier('fold_laundry')


def test_backends_are_built_by_name_from_references():
    config = load_config(toy_task.task())
    with pytest.raises(ValueError, match="unknown verification backend 'vibes'; known: .*classical"):
        make_backend('vibes', config)
    register_backend('red_only', 'tests.enpire_env.verification.test_task_verifier:_red_only')
    detector, segmenter = make_backend('red_only', config, scale=0.5)
    assert detector.detect(image(1.0)) == [] and segmenter.scale == 0.5
    with pytest.raises(ValueError, match='colour range'):
        make_backend('classical', config.model_copy(update={'colours': {}}))


class _RedOnly:
    def __init__(self, scale):
        self.scale = scale

    def detect(self, image):
        return []

    def segment(self, image, boxes):
        return {}


def _red_only(config, scale=1.0):
    backend = _RedOnly(scale)
    return backend, backend


def test_the_backend_registry_imports_no_backend():
    """Backends are named, not imported, by the registry: no import circle, no torch in a process that
    builds none."""
    code = ('import sys; import enpire_env.verification; '
            "print(sorted(m for m in sys.modules if m.startswith(('enpire_env.perception', "
            "'enpire_env.verification.classical', 'torch', 'ultralytics'))))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == '[]', out.stdout + out.stderr[-2000:]


def test_evidence_holds_the_annotated_frames_and_the_numbers(tmp_path):
    verifier = Verifier(toy_task.task())
    frames = {'a': Frame(image(0.8), H, 1.0), 'b': None}
    fused, judged = verifier.verify_frames(frames, cameras=['a', 'b'], now=1.0)
    folder = save_evidence(tmp_path, fused, frames, judged, extra={'task': 'red'})
    assert (folder / 'a.png').is_file() and not (folder / 'b.png').exists()
    record = json.loads((folder / 'verdict.json').read_text())
    assert record['task'] == 'red' and record['verdict']['state'] == int(fused.state)
    cams = {c['camera']: c for c in record['verdict']['cameras']}
    assert cams['a']['estimate'] == [pytest.approx(0.8)] and cams['b']['reason'] == 'no_frame'
