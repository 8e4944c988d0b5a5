"""The sandbox process: loads one policy and answers the runner's requests. Started by `sandbox.py` only.

argv: READ_FD WRITE_FD SCRATCH LIMITS_JSON. Requests arrive pickled from the (trusted) runner; answers go
back as JSON so the runner never unpickles anything the policy could have shaped.

Order of lock-down: import what policies may use -> (inside bubblewrap) the uid of this sandbox, resource
limits, the seccomp filter; (weaker mode) a new network namespace, root dropped to nobody, resource limits
-> audit hook + import allowlist (a second line, never relied on) -> load the policy.
"""
from __future__ import annotations

import builtins
import ctypes
import errno
import json
import math
import os
import pickle
import resource
import sys
import traceback
from multiprocessing.connection import Connection

_VIOLATIONS: list[str] = []
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_ALWAYS_BLOCKED = (
    'socket.', 'subprocess.', 'os.system', 'os.exec', 'os.posix_spawn', 'os.spawn', 'os.fork', 'os.forkpty',
    'os.kill', 'os.killpg', 'signal.pthread_kill', 'ctypes.', 'os.setuid', 'os.setgid', 'sys.remote_exec',
    'os.startfile', 'pty.', 'shutil.', 'webbrowser.', 'urllib.', 'http.', 'ftplib.', 'smtplib.',
    'os.chdir', 'os.fchdir', 'os.chroot', 'os.putenv', 'os.unsetenv', 'sys.setrecursionlimit', 'mmap.',
)
_PATH_EVENTS = ('os.remove', 'os.rename', 'os.rmdir', 'os.mkdir', 'os.symlink', 'os.link', 'os.truncate',
                'os.chmod', 'os.chown', 'os.utime', 'os.setxattr', 'os.removexattr', 'os.chflags')
_locked = False


class SandboxViolation(PermissionError):
    pass


def _violation(what: str):
    _VIOLATIONS.append(what)
    raise SandboxViolation(f'sandbox: {what} is not allowed')


def _inside(path, scratch: str) -> bool:
    try:
        real = os.path.realpath(os.fsdecode(path))
    except Exception:
        return False
    return real == scratch or real.startswith(scratch + os.sep)


def _make_audit_hook(scratch: str):
    def hook(event: str, args: tuple):
        if not _locked:
            return
        if event == 'open':
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            if isinstance(path, int):
                return
            writes = (isinstance(mode, str) and any(c in mode for c in 'wax+')) or \
                (isinstance(flags, int) and flags & _WRITE_FLAGS)
            if writes and not _inside(path, scratch):
                _violation(f'writing {path!s} (outside the scratch folder)')
            return
        if event.startswith(_ALWAYS_BLOCKED):
            _violation(event)
        if event in _PATH_EVENTS:
            for path in args[:2]:
                if isinstance(path, (str, bytes, os.PathLike)) and not _inside(path, scratch):
                    _violation(f'{event} on {path!s}')
    return hook


class _AllowlistFinder:
    """Meta-path hook: once locked, no module outside the allowed roots can be loaded."""

    def __init__(self, allowed_roots: set[str]):
        self.allowed_roots = allowed_roots

    def find_spec(self, fullname, path=None, target=None):
        if _locked and fullname.split('.')[0] not in self.allowed_roots:
            _violation(f'import of {fullname}')
        return None


def _guarded_import(allowed: frozenset[str]):
    real_import = builtins.__import__

    def guarded(name, globals=None, locals=None, fromlist=(), level=0):
        if level != 0:
            _violation(f'relative import of {name}')
        ok = name in allowed or (name.split('.')[0] == 'numpy' and 'numpy' in allowed) or (
            bool(fromlist) and all(f'{name}.{f}' in allowed for f in fromlist))   # `from pkg import tools`
        if not ok:
            _violation(f'import of {name}')
        return real_import(name, globals, locals, fromlist, level)
    return guarded


# What a policy never needs: networking, device nodes and fifos, other processes, new programs, namespaces,
# kernel keyrings, BPF, io_uring (which bypasses this filter), modules. Denied with EPERM.
_DENIED_SYSCALLS = (
    'socket', 'socketpair', 'connect', 'bind', 'listen', 'accept', 'accept4', 'mknod', 'mknodat',
    'ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp', 'pidfd_open', 'pidfd_getfd',
    'pidfd_send_signal', 'rt_sigqueueinfo', 'rt_tgsigqueueinfo', 'execve', 'execveat', 'fork', 'vfork',
    'clone3', 'mount', 'umount2', 'pivot_root', 'chroot', 'unshare', 'setns', 'mount_setattr', 'move_mount',
    'open_tree', 'fsopen', 'fsmount', 'fspick', 'keyctl', 'add_key', 'request_key', 'bpf', 'perf_event_open',
    'userfaultfd', 'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'init_module', 'finit_module',
    'delete_module', 'kexec_load', 'kexec_file_load', 'reboot', 'swapon', 'swapoff', 'acct', 'quotactl',
    'open_by_handle_at', 'name_to_handle_at', 'fanotify_init', 'personality', 'syslog', 'ioperm', 'iopl',
    'setuid', 'setgid', 'setreuid', 'setregid', 'setresuid', 'setresgid', 'setgroups', 'setfsuid', 'setfsgid',
    'prctl', 'seccomp', 'memfd_secret',
)


def _install_seccomp() -> int:
    """The filter, installed before the policy is loaded; returns how many syscalls it denies."""
    import pyseccomp as sc

    deny = sc.ERRNO(errno.EPERM)
    seccomp_filter = sc.SyscallFilter(sc.ALLOW)
    denied = 0
    for name in _DENIED_SYSCALLS:
        try:
            seccomp_filter.add_rule(deny, name)
            denied += 1
        except (OSError, ValueError, RuntimeError):
            pass     # not a syscall of this architecture
    pid = os.getpid()
    for name in ('kill', 'tkill', 'tgkill'):     # signals: to itself only
        seccomp_filter.add_rule(deny, name, sc.Arg(0, sc.NE, pid))
        denied += 1
    seccomp_filter.load()
    return denied


def _set_rlimits(limits: dict, report: dict) -> None:
    vm_kb = 0
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmSize:'):
                vm_kb = int(line.split()[1])
    mem = vm_kb * 1024 + int(limits.get('memory_mb', 512)) * 1024 * 1024
    cpu = int(math.ceil(limits.get('cpu_s', 120)))
    for name, value in (('RLIMIT_AS', mem), ('RLIMIT_CPU', cpu), ('RLIMIT_NPROC', 0),
                        ('RLIMIT_FSIZE', int(limits.get('file_mb', 16)) * 1024 * 1024),
                        ('RLIMIT_CORE', 0)):
        try:
            soft_hard = (value, value + 1) if name == 'RLIMIT_CPU' else (value, value)
            resource.setrlimit(getattr(resource, name), soft_hard)
            report[name] = value
        except (ValueError, OSError) as exc:
            report[name] = f'not set: {exc}'


def _harden_inside_bwrap(limits: dict, scratch: str) -> dict:
    """Inside bubblewrap's namespaces: this sandbox's own uid (when started as root), limits, seccomp."""
    report: dict = {'os_boundary': True}
    uid = limits.get('uid')
    if uid is not None and os.getuid() == 0:
        os.chown(scratch, uid, uid)
        os.chmod(scratch, 0o700)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    report['uid'] = os.getuid()
    if os.getuid() == 0 and uid is not None:
        raise SystemExit('sandbox: still root after dropping to the sandbox uid')
    _set_rlimits(limits, report)
    report['seccomp_denied'] = _install_seccomp()
    return report


def _harden(limits: dict, scratch: str) -> dict:
    """The explicitly weaker mode: no bubblewrap; a network namespace, nobody, limits."""
    report = {}
    libc = ctypes.CDLL(None, use_errno=True)
    os.chdir(scratch)  # before dropping root: the scratch folder's parents may be closed to nobody
    if limits.get('no_network', True):
        # A new network namespace has only a downed loopback: nothing can be reached.
        report['netns'] = libc.unshare(0x40000000) == 0 or (
            libc.unshare(0x10000000 | 0x40000000) == 0)
    if os.getuid() == 0 and limits.get('drop_root', True):
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            report['uid'] = 65534
        except OSError as exc:
            report['uid'] = f'kept root: {exc}'
    libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL: die with the runner (after setuid, which clears it)
    if os.getppid() == 1:
        os._exit(1)
    _set_rlimits(limits, report)
    return report


def main(argv: list[str]) -> int:
    global _locked
    read_fd, write_fd, scratch, limits_json = int(argv[0]), int(argv[1]), argv[2], argv[3]
    limits = json.loads(limits_json)
    conn_in = Connection(read_fd, writable=False)
    conn_out = Connection(write_fd, readable=False)

    def answer(**fields):
        fields['violations'] = [v[:500] for v in _VIOLATIONS[:10]]
        for key in ('error', 'trace'):      # the runner refuses oversized frames: keep answers small
            if isinstance(fields.get(key), str):
                fields[key] = fields[key][:4000]
        conn_out.send_bytes(json.dumps(fields, default=str).encode())

    # What a policy may use, imported before the lock-down (numpy's lazy submodules included).
    import numpy  # noqa: F401
    import numpy.fft  # noqa: F401
    import numpy.linalg  # noqa: F401
    import numpy.random  # noqa: F401

    from enpire_rollout import policy_runtime
    if limits.get('os_boundary'):
        import pyseccomp  # noqa: F401  (loads libseccomp while files and subprocesses are still allowed)
    allowed = frozenset(limits.get('allowed_imports') or policy_runtime.BASE_IMPORTS)
    for name in allowed:
        try:
            __import__(name)
        except ImportError:
            pass
    scratch = os.path.realpath(scratch)
    hardening = (_harden_inside_bwrap if limits.get('os_boundary') else _harden)(limits, scratch)
    roots = {m.split('.')[0] for m in sys.modules} | {m.split('.')[0] for m in allowed}
    roots -= {'subprocess', 'socket', '_socket', 'ctypes', '_ctypes', 'multiprocessing', 'pty', 'select'}
    if limits.get('audit_hook', True):   # tests switch the Python layers off: the OS boundary must hold
        sys.meta_path.insert(0, _AllowlistFinder(roots))
        sys.addaudithook(_make_audit_hook(scratch))

    first = pickle.loads(conn_in.recv_bytes())
    source, filename = first['source'], first['filename']
    policy_builtins = dict(vars(builtins))
    if limits.get('guard_imports', True):
        policy_builtins['__import__'] = _guarded_import(allowed)
    for name in ('open', 'exec', 'eval', 'compile', 'breakpoint', 'input', 'exit', 'quit', 'help'):
        if limits.get('guard_imports', True):
            policy_builtins.pop(name, None)
    module_globals = {'__name__': 'enpire_policy', '__file__': filename, '__builtins__': policy_builtins}
    _locked = True
    try:
        code = compile(source, filename, 'exec')
        exec(code, module_globals)
        policy = module_globals['Policy']()
    except BaseException as exc:  # noqa: BLE001 - anything the policy does at load ends it
        answer(ok=False, kind='violation' if _VIOLATIONS else 'load_error',
               error=f'{type(exc).__name__}: {exc}', trace=traceback.format_exc(limit=-3))
        return 3
    answer(ok=True, kind='hello', hardening=hardening)

    while True:
        try:
            request = pickle.loads(conn_in.recv_bytes())
        except EOFError:
            return 0
        op, seq = request['op'], request['seq']
        if op == 'close':
            answer(ok=True, seq=seq, kind='closed')
            return 0
        try:
            if op == 'act':
                result = policy_runtime.action_values(policy.act(request['arg']), int(limits['action_size']))
            elif op == 'reset':
                policy.reset(request['arg'])
                result = None
            elif op == 'failed':
                policy.on_attempt_failed(request['arg'])
                result = None
            else:
                raise ValueError(f'unknown op {op}')
        except BaseException as exc:  # noqa: BLE001
            kind = 'violation' if _VIOLATIONS else ('memory' if isinstance(exc, MemoryError) else 'exception')
            if isinstance(exc, ValueError) and str(exc).startswith('act() '):
                kind = 'invalid_action'
            answer(ok=False, seq=seq, kind=kind, error=f'{type(exc).__name__}: {exc}',
                   trace=traceback.format_exc(limit=-3))
            continue
        if _VIOLATIONS:  # the policy swallowed the sandbox's exception: still a break-out attempt
            answer(ok=False, seq=seq, kind='violation', error=_VIOLATIONS[0])
            continue
        answer(ok=True, seq=seq, kind='result', action=result)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
