"""No network, ever: import, training, validation and inference under a socket audit hook (offline_probe)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_train_validate_infer_without_any_network_attempt(tiny_run):
    assert tiny_run['attempts'] == [], tiny_run['attempts']
    out = Path(tiny_run['out'])
    assert Path(tiny_run['weights']).is_file()
    metrics = json.loads((out / 'metrics.json').read_text())
    assert metrics['epochs'] == 2 and metrics['images'] == 36 and metrics['train_seconds'] > 0
    assert metrics['train_cpu_seconds'] > 0 and metrics['load_average_start'] >= 0
    assert set(metrics['val']) == {'block', 'agent', 'goal', 'all'}
    card = json.loads((out / 'card.json').read_text())
    assert card['dataset']['counts']['frames'] == 36 and card['architecture'] == 'enpire-yolo-p2-p5'
    # the font ultralytics wants came from this machine, into the run's own config dir
    font = Path(tiny_run['home']) / 'ultralytics_config' / 'Ultralytics' / 'Arial.ttf'
    assert font.stat().st_size > 10_000


def test_the_probe_hook_does_catch_a_connection():
    """The audit hook is not vacuous: a plain connection attempt under it is refused and recorded."""
    code = ("import runpy, socket, sys; sys.argv = ['probe', '/nonexistent']; "
            f"g = runpy.run_path({str(Path(__file__).with_name('offline_probe.py'))!r}, run_name='probe'); "
            "s = socket.socket()\n"
            "try:\n    s.connect(('192.0.2.1', 80))\nexcept ConnectionRefusedError:\n    pass\n"
            "print(g['ATTEMPTS'])")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert 'socket.connect' in out.stdout, out.stderr[-2000:]


def test_perception_modules_import_without_torch():
    code = ('import sys; import enpire_env.perception.backends, enpire_env.perception.train, '
            'enpire_env.perception.yolo_backend, enpire_env.perception.sam_backend, '
            'enpire_task_pusht.perception.dataset; '
            "print(sorted(m for m in ('torch', 'ultralytics', 'segment_anything') if m in sys.modules))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == '[]', out.stdout + out.stderr[-2000:]
