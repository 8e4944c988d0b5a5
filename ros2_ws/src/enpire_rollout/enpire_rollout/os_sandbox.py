"""The policy sandbox's operating-system boundary (pure: no rclpy).

    support = probe()                      # once per process: does bubblewrap work here, and how
    lease = UidLease.acquire()             # root: a host uid of its own for each sandbox
    argv = bwrap_argv(support, [python, '-m', ...], uid=lease.uid, data_files=[...])

bubblewrap (`bwrap`) gives the policy process its own mount namespace (a read-only view of the
interpreter, the modules policies may import and the data files their source names; a private tmpfs
`/scratch`), its own pid, network, ipc, uts and cgroup namespaces, and dies with its parent. Run by root,
bwrap mounts with root's rights and the child drops to a uid no other sandbox holds (`UidLease`); run by
anyone else, bwrap also unshares the user namespace. The child then installs its seccomp filter
(`sandbox_child._install_seccomp`) before it loads the policy.
"""
from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from enpire_rollout import policy_runtime
from enpire_rollout.child_env import allowlisted_env

SCRATCH = '/scratch'
UID_BASE = 620_000          # host uids of sandboxes: UID_BASE .. UID_BASE + UID_SLOTS - 1 (owned by nobody)
UID_SLOTS = 512
LEASE_DIR = Path('/run/enpire_sandbox_uids' if os.access('/run', os.W_OK) else '/tmp/enpire_sandbox_uids')
SCRATCH_MB = 64
# What the child imports before the lock-down (with every installed task's policy modules, `preload()`);
# the probe imports the same to learn which files it needs.
PRELOAD = ('numpy', 'numpy.fft', 'numpy.linalg', 'numpy.random', 'pyseccomp', 'enpire_rollout.sandbox_child',
           'enpire_rollout.policy_runtime', *sorted(policy_runtime.BASE_IMPORTS))


def preload() -> tuple[str, ...]:
    return PRELOAD + tuple(sorted(policy_runtime.installed_policy_imports()))


@dataclass(frozen=True)
class Support:
    available: bool
    mode: str                   # 'uid' (root: a uid per sandbox) | 'userns' (unprivileged) | ''
    detail: str                 # why not, when not available


def bwrap_path() -> str | None:
    """bubblewrap: $ENPIRE_BWRAP when set (a lab's own build; a missing path means none), else on PATH."""
    given = os.environ.get('ENPIRE_BWRAP')
    if given is not None:
        return given if os.access(given, os.X_OK) else None
    return shutil.which('bwrap') or ('/usr/bin/bwrap' if os.access('/usr/bin/bwrap', os.X_OK) else None)


@functools.cache
def probe() -> Support:
    """What works on this machine: bubblewrap with every namespace the sandbox asks for, and seccomp."""
    bwrap = bwrap_path()
    if bwrap is None:
        return Support(False, '', 'bubblewrap (bwrap) is not installed')
    mode = 'uid' if os.geteuid() == 0 else 'userns'
    try:
        views = runtime_view()
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        return Support(False, '', f'cannot list the files the sandbox needs: {exc}')
    check = 'import pyseccomp; pyseccomp.SyscallFilter(pyseccomp.ALLOW)'
    argv = bwrap_argv(Support(True, mode, ''), [views['executable'], '-S', '-c', check])
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=30, env=allowlisted_env(),
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return Support(False, '', f'bwrap did not run: {exc}')
    if proc.returncode != 0:
        why = (proc.stderr or proc.stdout).decode(errors='replace').strip().splitlines()[-1:] or ['?']
        return Support(False, '', f'bwrap failed (exit {proc.returncode}): {why[0][:300]} '
                                  '(user namespaces restricted?)')
    return Support(True, mode, '')


_PROBE = '''
import json, sys
for name in sys.argv[1:]:
    __import__(name)
files = sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, '__file__', None)})
roots = {}
for name, m in list(sys.modules.items()):
    top = name.split('.')[0]
    f = getattr(sys.modules.get(top), '__file__', None)
    if f and top not in roots:
        roots[top] = f
libs = sorted({line.split()[-1] for line in open('/proc/self/maps') if line.rstrip().endswith('.so')
               or '.so.' in line.rsplit('/', 1)[-1]})
print(json.dumps({'files': files, 'roots': roots, 'libs': libs, 'executable': sys.executable}))
'''


@functools.cache
def runtime_view() -> dict:
    """The files and folders the sandbox child needs, learned by importing `preload()` in a fresh interpreter:
    {'executable', 'binds': [(source, dest)], 'pythonpath': [...]}."""
    python = os.path.realpath(sys.executable)
    env = allowlisted_env(pythonpath=[p for p in sys.path if p and os.path.isdir(p)])
    proc = subprocess.run([python, '-S', '-c', _PROBE, *preload()], capture_output=True, timeout=120, env=env,
                          stdin=subprocess.DEVNULL, check=True)
    found = json.loads(proc.stdout)
    prefix_lib = os.path.join(os.path.realpath(sys.base_prefix), 'lib')
    binds: dict[str, str] = {python: python, prefix_lib: prefix_lib}
    pythonpath: list[str] = []

    def covered(path: str) -> bool:
        real = os.path.realpath(path)
        return real.startswith(('/usr/', prefix_lib + os.sep))

    project_roots: list[str] = []      # the project's packages (enpire_*, task folders included)
    for top, init in found['roots'].items():
        if covered(init):
            continue
        is_package = os.path.basename(init).startswith('__init__.')
        root = os.path.dirname(init) if is_package else init
        parent = os.path.dirname(root)
        if parent not in pythonpath:
            pythonpath.append(parent)
        if top.startswith('enpire_'):
            project_roots.append(root + os.sep)
            continue                     # the project: only the files of the modules it loaded (below)
        binds[os.path.realpath(root)] = root
        for libs in (f'{root}.libs', os.path.join(parent, f'{top}.libs')):
            if os.path.isdir(libs):
                binds[os.path.realpath(libs)] = libs
    for f in found['files']:
        if not covered(f) and f.startswith(tuple(project_roots)):
            binds[os.path.realpath(f)] = f
    for lib in found['libs']:
        if not covered(lib) and os.path.isfile(lib) and not any(
                lib.startswith(d + os.sep) for d in binds.values()):
            binds[os.path.realpath(lib)] = lib
    return {'executable': python, 'binds': sorted(binds.items(), key=lambda b: b[1]),
            'pythonpath': pythonpath}


def bwrap_argv(support: Support, command: list[str], *, data_files: tuple[str, ...] = (),
               scratch_mb: int = SCRATCH_MB) -> list[str]:
    """The bwrap command line that runs `command` behind the boundary."""
    view = runtime_view()
    argv = [bwrap_path() or 'bwrap', '--die-with-parent', '--new-session', '--unshare-pid', '--unshare-net',
            '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try', '--hostname', 'policy-sandbox']
    if support.mode == 'userns':
        argv += ['--unshare-user', '--disable-userns']
    argv += ['--ro-bind', '/usr', '/usr', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64',
             '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/sbin', '/sbin', '--proc', '/proc',
             '--dev', '/dev']
    if os.path.isfile('/etc/ld.so.cache'):      # how ctypes finds libseccomp for the child's filter
        argv += ['--ro-bind', '/etc/ld.so.cache', '/etc/ld.so.cache']
    binds = list(view['binds']) + [(os.path.realpath(path), path) for path in data_files]
    # The folders leading to what is bound, open to the sandbox's uid (bwrap would copy the host's modes:
    # a 0700 mkdtemp folder would hide the weights file bound inside it).
    parents = {str(p) for _, dest in binds for p in Path(dest).parents if str(p) not in ('/', '/usr')
               and not str(p).startswith('/usr/')}
    for folder in sorted(parents, key=lambda p: (p.count(os.sep), p)):
        argv += ['--perms', '0755', '--dir', folder]
    for source, dest in binds:
        argv += ['--ro-bind', source, dest]
    argv += ['--size', str(scratch_mb * 1024 * 1024), '--tmpfs', SCRATCH, '--remount-ro', '/dev',
             '--remount-ro', '/', '--chdir', SCRATCH, '--clearenv']
    for key, value in allowlisted_env(pythonpath=view['pythonpath'], home=SCRATCH).items():
        argv += ['--setenv', key, value]
    return argv + ['--', *command]


class UidLease:
    """A host uid for one sandbox, held (flock) as long as the sandbox lives: no two sandboxes share one."""

    def __init__(self, uid: int, fd: int):
        self.uid, self._fd = uid, fd

    @classmethod
    def acquire(cls) -> UidLease:
        LEASE_DIR.mkdir(mode=0o700, exist_ok=True)
        start = os.getpid() % UID_SLOTS
        for i in range(UID_SLOTS):
            slot = (start + i) % UID_SLOTS
            fd = os.open(LEASE_DIR / str(slot), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return cls(UID_BASE + slot, fd)
        raise RuntimeError(f'all {UID_SLOTS} sandbox uids are in use')

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def data_files_named(source: str, allowed_dirs: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Weights files a policy source names (absolute string constants ending in .npz) that the sandbox may
    read: regular files, readable by everyone, inside `allowed_dirs` when given."""
    import ast

    from enpire_rollout.source_parse import parse_source
    try:
        tree = parse_source(source)
    except SyntaxError:
        return ()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith('.npz') \
                and node.value.startswith('/') and len(node.value) < 4096:
            if readable_data_file(node.value, allowed_dirs):
                found.append(node.value)
    return tuple(sorted(set(found)))


def readable_data_file(path: str, allowed_dirs: tuple[str, ...] = ()) -> bool:
    real = os.path.realpath(path)
    if real.startswith(('/proc/', '/sys/', '/dev/')) or not os.path.isfile(real):
        return False
    if not os.stat(real).st_mode & 0o004:
        return False
    return not allowed_dirs or any(inside(real, d) for d in allowed_dirs)


def inside(path: str, folder: str) -> bool:
    folder = os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)
