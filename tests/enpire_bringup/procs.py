"""Process helpers for the bringup tests: find processes by an environment token (/proc, no psutil)."""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path


def new_token() -> str:
    return uuid.uuid4().hex


def pids_with_token(token: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries ENPIRE_TEST_TOKEN=<token>."""
    needle = f'ENPIRE_TEST_TOKEN={token}'.encode()
    found = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / 'environ').read_bytes().split(b'\0'):
                continue
            state = (entry / 'stat').read_text().rsplit(')', 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != 'Z':
            found.append(int(entry.name))
    return found


def wait_no_pids(token: str, timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = pids_with_token(token)
        if not left:
            return []
        time.sleep(0.05)
    return pids_with_token(token)
