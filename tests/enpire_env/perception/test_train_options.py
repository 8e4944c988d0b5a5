"""The training command's resume and init options, where they need no training: with nothing to resume or
start from they are refused before torch loads (tests/tasks/peg/test_yolo_masks.py trains for real)."""
import pytest

from enpire_env.perception import train


def test_resume_without_a_cut_off_run_is_refused_with_the_reason(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing to resume.*last.pt'):
        train.train(tmp_path / 'empty', resume=True, task='peg_insertion')
    (tmp_path / 'half' / 'run' / 'weights').mkdir(parents=True)
    (tmp_path / 'half' / 'run' / 'weights' / 'last.pt').write_bytes(b'x')
    with pytest.raises(FileNotFoundError, match='card.json'):     # weights without their dataset
        train.train(tmp_path / 'half', resume=True, task='peg_insertion')



def test_starting_from_weights_that_are_not_there_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match='--init .*no such weights file'):
        train.train(tmp_path / 'out', init=tmp_path / 'missing.pt', task='peg_insertion')
