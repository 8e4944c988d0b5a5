"""The training command's resume option, where it needs no training: with nothing to resume it is refused
before torch loads (tests/tasks/peg/test_yolo_masks.py trains the fine-mask layout for real)."""
import pytest

from enpire_env.perception import train


def test_resume_without_a_cut_off_run_is_refused_with_the_reason(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing to resume.*last.pt'):
        train.train(tmp_path / 'empty', resume=True, task='peg_insertion')
    (tmp_path / 'half' / 'run' / 'weights').mkdir(parents=True)
    (tmp_path / 'half' / 'run' / 'weights' / 'last.pt').write_bytes(b'x')
    with pytest.raises(FileNotFoundError, match='card.json'):     # weights without their dataset
        train.train(tmp_path / 'half', resume=True, task='peg_insertion')

