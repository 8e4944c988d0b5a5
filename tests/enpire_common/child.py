"""A stand-in node for supervisor tests: `python child.py <mode> [args]`.

modes: serve (print ready, run until SIGINT/SIGTERM, then print the signal and exit 0; with
`--grandchild` it first starts a sleeping grandchild in its group), crash <starts-file> (append a
timestamp, exit 3), stubborn (ignores SIGINT and SIGTERM), exit0 (print and exit 0).
"""
import signal
import subprocess
import sys
import time


def serve(argv):
    if '--grandchild' in argv:
        subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])
        print('grandchild started', flush=True)
    got = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: got.append(s))
    print('node ready', flush=True)
    while not got:
        time.sleep(0.02)
    print(f'got {signal.Signals(got[0]).name}', flush=True)
    sys.exit(0)


def main():
    mode = sys.argv[1]
    if mode == 'serve':
        serve(sys.argv[2:])
    elif mode == 'crash':
        with open(sys.argv[2], 'a') as f:
            f.write(f'{time.monotonic()}\n')
        print('crashing', flush=True)
        sys.exit(3)
    elif mode == 'stubborn':
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print('node ready', flush=True)
        time.sleep(600)
    elif mode == 'exit0':
        print('done', flush=True)


if __name__ == '__main__':
    main()
