"""Keep ultralytics (and torch hub) off the network. Call `configure()` before `import ultralytics`.

Ultralytics reaches for the network in several places: an online check (DNS), downloading a font for
plots and dataset checks, `check_amp` (downloads a .pt), pip auto-install of missing requirements,
analytics/sync. What stops all of them (measured, see ../shared/SIM_AND_PERCEPTION.md and the socket-audit
test in tests/enpire_env/perception/test_offline.py):

    YOLO_OFFLINE=1             is_online() answers False without a DNS query; nothing is fetched
    YOLO_CONFIG_DIR=<writable> its settings file and font cache live here, not in ~/.config
    YOLO_AUTOINSTALL=false     never pip-installs a missing requirement
    Arial.ttf                  a TTF already on this machine copied to $YOLO_CONFIG_DIR/Ultralytics/Arial.ttf
    amp=False                  (a training argument, `TRAIN_OFFLINE_ARGS`) skips check_amp's download
    never a '.pt' name         YOLO('yolov8n.pt') downloads; models are built from a .yaml or a local file

Pure module: no torch, no ultralytics import.
"""
from __future__ import annotations

import glob
import importlib.util
import os
import shutil
from pathlib import Path

# Arguments every ultralytics train/val call of this package passes.
TRAIN_OFFLINE_ARGS = dict(amp=False, plots=False, device='cpu')

_FONT_CANDIDATES = (
    '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
    '/usr/share/fonts/**/*.ttf',
)


def perception_home() -> Path:
    """Where datasets, runs and weights go: $ENPIRE_PERCEPTION_DIR, else ~/.cache/enpire/perception."""
    return Path(os.environ.get('ENPIRE_PERCEPTION_DIR', '~/.cache/enpire/perception')).expanduser()


def find_font() -> Path | None:
    """A TrueType font already on this machine (matplotlib's DejaVuSans, else a system font)."""
    spec = importlib.util.find_spec('matplotlib')
    candidates: list[str] = []
    if spec is not None and spec.origin:
        candidates.append(str(Path(spec.origin).parent / 'mpl-data/fonts/ttf/DejaVuSans.ttf'))
    for pattern in _FONT_CANDIDATES:
        candidates.extend(sorted(glob.glob(pattern, recursive=True)))
    for c in candidates:
        if Path(c).is_file():
            return Path(c)
    return None


def configure(config_dir: str | Path | None = None, threads: int | None = None) -> Path:
    """Set the offline environment (idempotent) and return the ultralytics config dir.

    An explicit YOLO_CONFIG_DIR already in the environment is kept. `threads` sets torch's intra-op
    threads when torch is (or gets) imported by the caller; here only OMP_NUM_THREADS is set.
    """
    os.environ['YOLO_OFFLINE'] = '1'
    os.environ['YOLO_AUTOINSTALL'] = 'false'
    os.environ.setdefault('YOLO_VERBOSE', 'false')
    # torch.hub / huggingface, should anything reach for them.
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    os.environ.setdefault('TORCH_HOME', str(perception_home() / 'torch'))
    if threads:
        os.environ.setdefault('OMP_NUM_THREADS', str(threads))
    if config_dir is not None:
        os.environ['YOLO_CONFIG_DIR'] = str(Path(config_dir).expanduser())
    elif 'YOLO_CONFIG_DIR' not in os.environ:
        os.environ['YOLO_CONFIG_DIR'] = str(perception_home() / 'ultralytics_config')
    root = Path(os.environ['YOLO_CONFIG_DIR'])
    user_dir = root / 'Ultralytics'
    user_dir.mkdir(parents=True, exist_ok=True)
    font = user_dir / 'Arial.ttf'
    if not font.exists():
        src = find_font()
        if src is None:
            raise RuntimeError('no TrueType font found on this machine (ultralytics would download '
                               'Arial.ttf); '
                               'install fonts-dejavu-core or matplotlib')
        shutil.copyfile(src, font)
    return root


def is_configured() -> bool:
    return os.environ.get('YOLO_OFFLINE') == '1' and os.environ.get('YOLO_AUTOINSTALL') == 'false' and (
        Path(os.environ.get('YOLO_CONFIG_DIR', '/nonexistent')) / 'Ultralytics' / 'Arial.ttf').is_file()


def import_ultralytics(threads: int | None = None):
    """`configure()`, then import ultralytics; `threads` sets torch's intra-op threads."""
    configure(threads=threads)
    import torch

    # Before any EGL context: importing torch._inductor (training imports it) after MuJoCo has rendered
    # through EGL in the same process crashed it (segmentation fault, torch 2.14, Mesa EGL).
    import torch._inductor  # noqa: F401
    import ultralytics
    if threads:
        torch.set_num_threads(int(threads))
    return ultralytics
