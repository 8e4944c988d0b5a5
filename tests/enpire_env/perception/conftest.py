"""One tiny training run (2 epochs, a few dozen frames) shared by the perception tests.

It runs in a subprocess under a socket audit hook (offline_probe.py), so the same run proves that
import, training, validation and inference never touch the network, and leaves weights for the others.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip('ultralytics')
pytest.importorskip('segment_anything')

PROBE = Path(__file__).with_name('offline_probe.py')


@pytest.fixture(scope='session')
def tiny_run(tmp_path_factory):
    home = tmp_path_factory.mktemp('perception_home')
    env = {k: v for k, v in os.environ.items() if not k.startswith('YOLO_')}
    env.update(ENPIRE_PERCEPTION_DIR=str(home), OMP_NUM_THREADS='2')
    proc = subprocess.run([sys.executable, str(PROBE), str(home / 'yolo')], env=env, capture_output=True,
                          text=True, timeout=290)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('PROBE ')]
    assert proc.returncode == 0 and lines, f'probe failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
    result = json.loads(lines[-1][len('PROBE '):])
    result['home'] = str(home)
    return result
