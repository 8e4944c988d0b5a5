"""Run in a subprocess by test_offline.py: import, train, validate and infer with a socket audit hook.

The hook is installed before anything else is imported. Every socket connection (other than AF_UNIX),
every name lookup and every urllib request is recorded and refused. Prints one JSON line.
Usage: python offline_probe.py OUT_DIR
"""
import json
import socket
import sys

ATTEMPTS = []
_WATCHED = {'socket.connect', 'socket.connect_ex', 'socket.getaddrinfo', 'socket.gethostbyname',
            'socket.gethostbyname_ex', 'socket.gethostbyaddr', 'socket.getnameinfo', 'socket.sendto',
            'socket.sendmsg', 'urllib.Request', 'http.client.connect'}


def _hook(event, args):
    if event not in _WATCHED:
        return
    family = getattr(args[0], 'family', None) if args else None
    if event in ('socket.connect', 'socket.connect_ex') and family == socket.AF_UNIX:
        return
    ATTEMPTS.append(f'{event} {args[1:] if event.startswith("socket.connect") else args}'[:200])
    raise ConnectionRefusedError(f'offline test: network access refused ({event})')


sys.addaudithook(_hook)


def main(out):
    from pathlib import Path

    import numpy as np

    from enpire_env.perception import offline_guard
    offline_guard.configure()
    import ultralytics  # noqa: F401  (import under the hook)

    from enpire_env.perception import train
    from enpire_env.perception.yolo_backend import YoloDetector
    metrics = train.train(out, images=36, epochs=2, imgsz=96, batch=8, threads=2, sizes=(96,), task='pusht')
    det = YoloDetector(metrics['weights'], conf=0.001)
    img = np.full((96, 96, 3), 255, np.uint8)
    boxes = det.detect(img)
    result = dict(attempts=ATTEMPTS, weights=metrics['weights'], metrics=metrics,
                  boxes=[b.model_dump() for b in boxes], out=str(Path(out)))
    print('PROBE ' + json.dumps(result))


if __name__ == '__main__':
    main(sys.argv[1])
