"""How many simulated cells this machine carries: for N = 1, 2, 4, 8, 16, 32 Push-T cells (3 cameras at
96x96, real_time pacing: 10 Hz of sim time per wall second when the machine keeps up), all running
back-to-back recorded trials of a scripted policy.

Run: `. ./env.sh && python bench/fleet_scale.py [--cells 1 2 4 8] [--idle-s 15] [--active-s 40]`.
Per N, measured from outside the cells:
- DDS participants: the distinct DDS participants (GUID prefixes) behind the endpoints of each cell's
  topics, as the bench's node discovers them; `participants_per_cell` is the most any one cell has (over
  all N in the summary), and a cell with more names the nodes behind each (`extra_participants`);
  beside them the FastDDS participant ids the cells' processes hold, read from the UDP ports they bind
  (metatraffic unicast 7400 + 250*domain + 10 + 2*participantId; /proc/<pid>/fd socket inodes matched
  against /proc/net/udp{,6}): `participant_ports`, a cross-check from outside DDS that has counted one id
  too many twice (2 for one cell at N=1, 17 for 16 cells at N=16, in runs whose other N counted one per
  cell);
- CPU cores per idle cell and per active cell: utime + stime (+ the reaped children's, so the policy
  sandboxes count) of every process of the cells' process trees, from /proc, over a measured span
  (idle: cells up, no trial; active: trials running), divided by the span and by N;
- achieved real-time factor: sim time advanced on each cell's clock (its `clock` topic, or the stamps
  of its `cell_state` where a cell publishes no clock) over the wall time between two samples;
- trials per hour: trials finished inside the active span.
Each N ends by closing its fleet client while its node still spins: the trials on the cells are
cancelled and the client returns within a bounded time (`fleet_closed`, `driver_returned`); its action
clients are destroyed once the spin has ended, before the context shuts down. Prints a progress line
per N, writes the JSON after each N, a plot (cores per cell and RTF against N) and ends with one JSON
line (`participants_per_cell`, `idle_cores_per_cell`, `rtf_8_cells`, `cells_up_32`, `rtf_32_cells`, ...),
also when an N finished no trial, could not come up, or the bench was stopped by SIGTERM/SIGINT
(`interrupted`, exit code 143).

What an idle real-time cell costs is its executor's wake-ups (rclpy rebuilds its wait set of every entity
of the cell, ~90 of them, each time: ~0.5 ms of Python) and the sim's tick. What keeps it low: the sim
renders and publishes a camera, and computes the ground truth, only for matched subscribers; the trial
server subscribes the cell's state, truth and cameras per trial, the verify node its cameras around
verifications, the recorder the state, truth and cameras while a bag is open; a composed cell's entities
carry no default QoS-event handler; the sim's clock messages set the composed cell's clocks in the process
(no clock subscription); the safety node takes the cell states when a command, a watchdog tick or an
e-stop needs them and has a watchdog timer only while a command stream is live or the e-stop is latched;
callbacks run on the spin thread no longer trigger the executor's guard condition (a wake-up that found
nothing). Wake-ups of one idle real-time cell per 10 Hz tick: 4.4 before these last four, 2 after (the
tick, and one that finds nothing: the action servers' result-expiry timers on the cell's clock are
cancelled, and rcl still wakes a wait set for a cancelled timer at every clock jump).

Measured on this 2-core machine shared with other work (`nice -n 10 python bench/fleet_scale.py`, CPU from
/proc), idle cores per real-time cell, 2026-12-07:
- cameras always subscribed (`--cells 1 4 8`, load 4.8-16.5): 0.083 / 0.089 / 0.084 at N = 1 / 4 / 8;
- cameras, truth and state on demand (`--cells 1 4 8`, load 3.0-9.2): 0.043 / 0.045 / 0.053;
- and the wake-ups above (all N, load 2.2-97.8): 0.023 / 0.023 / 0.022 / 0.023 / 0.022 / 0.027 at
  N = 1 / 2 / 4 / 8 / 16 / 32; active 0.135 / 0.120 / 0.121 / 0.116 / 0.084 / 0.055 (trials in the 40 s
  span are few, and at N = 32 none finished: the machine is saturated); RTF 1.01 / 1.01 / 1.01 / 1.006 /
  0.86 / 0.366; trials per hour 360 / 720 / 1440 / 2160 / 1707 / 0. One DDS participant per cell.
  That run hung after N = 32, before its plot: each N's action clients were left to the garbage collector
  (see enpire_rollout.fleet_client), its workers still waiting for the trials in flight.
- after the fix, short windows (`--cells 8 32 --idle-s 5 --warmup-s 5 --active-s 10 --settle-s 2`, load
  up to 93): the final line in 480 s, every trial in flight cancelled (`fleet_closed`); idle 0.024 /
  0.023 at N = 8 / 32, RTF 0.979 / 0.294; at most one participant in any cell, but at N = 32 one cell
  (cell_29; another run: 1 of 32 too) was never discovered by the bench's node, created after the cells
  were up, though the cells' ready checks had seen it and its process held its participant port.
"""
from __future__ import annotations

import argparse
import faulthandler
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._cell import BENCH_TRIAL_SERVER, oscillating_policy  # noqa: E402  (sets loopback discovery)

TICKS = os.sysconf('SC_CLK_TCK')


def process_tree(roots: list[int]) -> list[int]:
    """`roots` and all their descendants (the cells' nodes and their sandbox children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            ppid = int(Path(f'/proc/{entry}/stat').read_text().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    """Per process: utime + stime + cutime + cstime (reaped children included), in clock ticks."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
            out[pid] = sum(int(x) for x in fields[11:15])
        except (OSError, IndexError, ValueError):
            continue
    return out


def cpu_seconds_between(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU seconds of the processes between two samples (a process born in between counts whole)."""
    return sum(t - before.get(pid, 0) for pid, t in after.items()) / TICKS


def graph_participants(node, cells: list[str]) -> dict[str, dict[str, set[str]]]:
    """Per cell, the GUID prefixes (the participant part of an endpoint's GID, its first 12 bytes, in hex)
    of the publishers and subscriptions of the cell's topics that `node` has discovered, each with the
    nodes whose endpoints carry it (so a second participant in a cell names its owner)."""
    out: dict[str, dict[str, set[str]]] = {cell: {} for cell in cells}
    for topic, _types in node.get_topic_names_and_types():
        cell = topic.split('/')[1] if topic.count('/') >= 2 else ''
        if cell not in out:
            continue
        for info in [*node.get_publishers_info_by_topic(topic), *node.get_subscriptions_info_by_topic(topic)]:
            if info.node_name != node.get_name():
                owner = f'{info.node_namespace.rstrip("/")}/{info.node_name}'
                out[cell].setdefault(bytes(info.endpoint_gid[:12]).hex(), set()).add(owner)
    return out


def wait_discovered(node, cells: list[str], timeout_s: float) -> list[str]:
    """Wait until `node` has discovered endpoints of every cell and every cell's clock publisher (a loaded
    machine discovers 32 cells in minutes: counted earlier, a cell not yet seen would count no
    participant); the cells still not discovered."""
    from enpire_common import names

    deadline = time.monotonic() + timeout_s
    while True:
        missing = [cell for cell, prefixes in graph_participants(node, cells).items()
                   if not prefixes or node.count_publishers(names.cell_name(cell, 'clock')) == 0]
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(1.0)


def participant_figures(by_cell: dict[str, dict[str, set[str]]]) -> dict:
    """`participants_per_cell`: the most participants any one cell has; the cells with exactly one; and
    for each cell with more, its participants and the nodes behind each."""
    counts = [len(prefixes) for prefixes in by_cell.values()]
    return {
        'participants': len({prefix for prefixes in by_cell.values() for prefix in prefixes}),
        'participants_per_cell': max(counts, default=0),
        'cells_with_one_participant': counts.count(1),
        'extra_participants': {cell: {prefix: sorted(nodes) for prefix, nodes in prefixes.items()}
                               for cell, prefixes in by_cell.items() if len(prefixes) > 1},
    }


def udp_ports_by_inode() -> dict[int, int]:
    ports = {}
    for table in ('/proc/net/udp', '/proc/net/udp6'):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            ports[int(parts[9])] = int(parts[1].rsplit(':', 1)[1], 16)
    return ports


def participants(pids: list[int], domain: int) -> dict[int, set[int]]:
    """Per process, the FastDDS participant ids whose metatraffic unicast port it binds in `domain`."""
    by_inode = udp_ports_by_inode()
    base = 7400 + 250 * domain + 10
    out: dict[int, set[int]] = {}
    for pid in pids:
        try:
            links = [os.readlink(f'/proc/{pid}/fd/{fd}') for fd in os.listdir(f'/proc/{pid}/fd')]
        except OSError:
            continue
        for link in links:
            if not link.startswith('socket:['):
                continue
            port = by_inode.get(int(link[8:-1]))
            if port is not None and base <= port < base + 240 and (port - base) % 2 == 0:
                out.setdefault(pid, set()).add((port - base) // 2)
    return out


class ClockSampler:
    """(wall, sim) samples of each cell's time: its `clock` topic, else its `cell_state` stamps."""

    def __init__(self, node, cells: list[str]):
        from enpire_common import names
        from rclpy.qos import qos_profile_sensor_data
        from rosgraph_msgs.msg import Clock

        from enpire_interfaces.msg import CellState

        self.node, self.cells, self.latest = node, cells, {}
        self.source = {}
        self._lock = threading.Lock()
        self._subs = []
        for cell in cells:
            clock_topic = names.cell_name(cell, 'clock')
            if node.count_publishers(clock_topic):
                self.source[cell] = 'clock'
                self._subs.append(node.create_subscription(
                    Clock, clock_topic, lambda m, c=cell: self._take(c, m.clock), qos_profile_sensor_data))
            else:
                self.source[cell] = 'cell_state'
                self._subs.append(node.create_subscription(
                    CellState, names.cell_name(cell, names.CELL_STATE),
                    lambda m, c=cell: self._take(c, m.header.stamp), qos_profile_sensor_data))

    def _take(self, cell, stamp) -> None:
        with self._lock:
            self.latest[cell] = (time.monotonic(), stamp.sec + stamp.nanosec * 1e-9)

    def sample(self, timeout_s: float = 20.0) -> dict[str, tuple[float, float]]:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self.latest.clear()
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.latest) == len(self.cells):
                    return dict(self.latest)
            time.sleep(0.05)
        with self._lock:
            return dict(self.latest)

    def close(self) -> None:
        for sub in self._subs:
            self.node.destroy_subscription(sub)


def rtf(first: dict, last: dict) -> list[float]:
    return [(last[c][1] - first[c][1]) / max(1e-6, last[c][0] - first[c][0]) for c in first if c in last]


def back_to_back(fleet, requests_for, stop: threading.Event, finished: list[float]) -> None:
    """Keep every cell busy: batches of one trial per cell until `stop`; the finish time of each trial."""
    def on_trial(outcome, done, total):
        if outcome.accepted and not outcome.failure_reason:
            finished.append(time.monotonic())
    batch = 0
    while not stop.is_set():
        fleet.run_trials(requests_for(batch), progress=on_trial, stop=stop.is_set)
        batch += 1


def measure(n: int, args, work: Path, say) -> dict:
    import rclpy
    from enpire_common.cells import simulated_cells
    from enpire_common.executors import SubmitOnceExecutor
    from rclpy.signals import SignalHandlerOptions

    from enpire_rollout.fleet_client import FleetClient, TrialRequest

    cells = [f'cell_{i}' for i in range(n)]
    policy = work / 'policy.py'
    policy.write_text(oscillating_policy(touch_frame=True))
    domain = int(os.environ['ROS_DOMAIN_ID'])
    ready_s = args.ready_s + args.ready_per_cell_s * n
    parameters = {'sim': {'pacing': 'real_time'}, 'safety': {'pacing': 'real_time'},
                  'trial_server': BENCH_TRIAL_SERVER}
    row: dict = {'cells': n, 'up': False}
    t_start = time.monotonic()
    with simulated_cells(cells, work / f'logs_{n}', bag_dir=lambda cell: work / f'bags_{n}' / cell,
                         parameters=parameters, ready_timeout_s=ready_s) as running:
        up = running.wait_ready(ready_s)
        row['up_s'] = round(time.monotonic() - t_start, 1)
        roots = list(running.supervisor.pids().values())
        row['processes'] = len(roots)
        if not up:
            row['problems'] = running.problems()[:5]
            say(f'N={n}: NOT up within {ready_s:.0f} s ({len(roots)} processes alive)')
            return row
        row['up'] = True
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=domain, signal_handler_options=SignalHandlerOptions.NO)
        node = rclpy.create_node('fleet_scale_bench', context=context)
        executor = SubmitOnceExecutor(context=context)
        executor.add_node(node)
        spin = threading.Thread(target=executor.spin, daemon=True)
        spin.start()
        stop = threading.Event()
        fleet = sampler = driver = None
        try:
            t_seen = time.monotonic()
            # healthy cells are discovered within seconds (6 s for 16); one missing after minutes stays so
            missing = wait_discovered(node, cells, 60.0 + 2.0 * n)
            row['cells_discovered'] = n - len(missing)
            if missing:
                row['cells_not_discovered'] = missing
            row['discovered_s'] = round(time.monotonic() - t_seen, 1)
            time.sleep(args.settle_s)      # a second participant of a cell would be discovered meanwhile
            row.update(participant_figures(graph_participants(node, cells)))
            by_process = participants(process_tree(roots), domain)
            row['participant_ports'] = len(set().union(*by_process.values())) if by_process else 0
            # idle: every cell up, no trial
            before, t0 = cpu_ticks(process_tree(roots)), time.monotonic()
            time.sleep(args.idle_s)
            idle = cpu_seconds_between(before, cpu_ticks(process_tree(roots))) / (time.monotonic() - t0)
            row['idle_cores_per_cell'] = round(idle / n, 4)
            # active: back-to-back recorded trials on every cell
            sampler = ClockSampler(node, cells)
            row['time_source'] = sorted(set(sampler.source.values()))
            fleet = FleetClient(node, cells, server_timeout_s=ready_s, goal_answer_timeout_s=ready_s)

            def requests_for(batch):
                return [TrialRequest(task='pusht', policy_path=str(policy), seed=batch * n + i, attempts=1,
                                     steps_per_attempt=args.steps, record=True) for i in range(n)]
            finished: list[float] = []
            driver = threading.Thread(target=back_to_back, args=(fleet, requests_for, stop, finished),
                                      daemon=True)
            driver.start()
            time.sleep(args.warmup_s)
            first = sampler.sample()
            before, t0 = cpu_ticks(process_tree(roots)), time.monotonic()
            time.sleep(args.active_s)
            active = cpu_seconds_between(before, cpu_ticks(process_tree(roots)))
            span = time.monotonic() - t0
            last = sampler.sample()
            row['active_cores_per_cell'] = round(active / span / n, 4)
            factors = rtf(first, last)
            row['rtf_mean'] = round(statistics.fmean(factors), 3) if factors else None
            row['rtf_min'] = round(min(factors), 3) if factors else None
            row['rtf_cells_sampled'] = len(factors)
            done = [t for t in finished if t0 <= t <= t0 + span]
            row['trials_in_span'] = len(done)
            row['trials_per_hour'] = round(len(done) * 3600.0 / span, 1)
            row['load_avg_1m'] = os.getloadavg()[0]
        finally:
            # While the node still spins: the trials on the cells cancelled, the driver back; then the spin
            # ends, and the action clients go before the node and the context (FleetClient.destroy).
            stop.set()
            if fleet is not None:
                row['fleet_closed'] = fleet.close(timeout_s=fleet.cancel_timeout_s * 2 + 30)
            if driver is not None:
                driver.join(timeout=30)
                row['driver_returned'] = not driver.is_alive()
            if sampler is not None:
                sampler.close()
            executor.shutdown()
            spin.join(timeout=30)
            if fleet is not None:
                fleet.destroy()
            node.destroy_node()
            rclpy.try_shutdown(context=context)
    return row


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    up = [r for r in rows if r['up']]
    fig, (ax_cpu, ax_rtf) = plt.subplots(1, 2, figsize=(11, 4))
    ns = [r['cells'] for r in up]
    ax_cpu.plot(ns, [r.get('idle_cores_per_cell') for r in up], 'o-', label='idle cell')
    ax_cpu.plot(ns, [r.get('active_cores_per_cell') for r in up], 's-', label='active cell (trials)')
    ax_cpu.set_xlabel('cells on this machine')
    ax_cpu.set_ylabel('CPU cores per cell')
    ax_cpu.set_xscale('log', base=2)
    ax_cpu.legend()
    ax_cpu.grid(alpha=0.3)
    ax_rtf.plot(ns, [r.get('rtf_mean') for r in up], 'o-', label='mean over cells')
    ax_rtf.plot(ns, [r.get('rtf_min') for r in up], 'v--', label='slowest cell')
    ax_rtf.axhline(1.0, color='0.5', ls=':')
    ax_rtf.set_xlabel('cells on this machine')
    ax_rtf.set_ylabel('real-time factor (sim s / wall s)')
    ax_rtf.set_xscale('log', base=2)
    ax_rtf.set_ylim(bottom=0)
    ax_rtf.legend()
    ax_rtf.grid(alpha=0.3)
    down = [r['cells'] for r in rows if not r['up']]
    fig.suptitle('fleet scale: simulated Push-T cells, 3 cameras 96x96, 10 Hz, recorded trials'
                 + (f' (not up: N={down})' if down else ''), fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary(rows: list[dict]) -> dict:
    up = [r for r in rows if r['up']]
    by_n = {r['cells']: r for r in rows}

    def at(n, key):
        return by_n[n].get(key) if n in by_n else None
    return {
        'participants_per_cell': max((r['participants_per_cell'] for r in up), default=None),
        # every cell of every N discovered, each with exactly one participant
        'one_participant_every_cell': bool(up) and all(r['cells_with_one_participant'] == r['cells']
                                                       for r in up),
        'idle_cores_per_cell': max((r['idle_cores_per_cell'] for r in up), default=None),
        'active_cores_per_cell': max((r['active_cores_per_cell'] for r in up), default=None),
        'rtf_8_cells': at(8, 'rtf_mean'), 'rtf_min_8_cells': at(8, 'rtf_min'),
        'cells_up_32': at(32, 'up'), 'rtf_32_cells': at(32, 'rtf_mean'),
        'trials_per_hour_8_cells': at(8, 'trials_per_hour'),
        'trials_per_hour_32_cells': at(32, 'trials_per_hour'),
        'per_n': rows,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--cells', type=int, nargs='+', default=[1, 2, 4, 8, 16, 32])
    ap.add_argument('--idle-s', type=float, default=15.0, help='idle span measured per N')
    ap.add_argument('--active-s', type=float, default=40.0, help='active span measured per N')
    ap.add_argument('--warmup-s', type=float, default=10.0, help='trials running before the active span')
    ap.add_argument('--settle-s', type=float, default=5.0, help='after the cells are up, before measuring')
    ap.add_argument('--steps', type=int, default=100, help='steps per trial (10 Hz: 100 = 10 s of sim time)')
    ap.add_argument('--ready-s', type=float, default=60.0, help='bring-up time allowed: this ...')
    ap.add_argument('--ready-per-cell-s', type=float, default=10.0, help='... plus this per cell')
    ap.add_argument('--keep-going', action='store_true',
                    help='try the larger N after one did not come up (default: skip them)')
    ap.add_argument('--out', default=None, help='output folder (default runs/fleet_scale_<time>)')
    args = ap.parse_args()
    out = Path(args.out or f'runs/fleet_scale_{time.strftime("%Y%m%d_%H%M%S")}').resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()

    def say(line: str) -> None:
        print(f'[{time.monotonic() - t0:7.1f}s] {line}', flush=True)

    say(f'fleet scale: N = {args.cells} on ROS_DOMAIN_ID={os.environ["ROS_DOMAIN_ID"]}, '
        f'{os.cpu_count()} cores, into {out}')
    # SIGTERM and SIGINT end the bench through its `finally`s: every cell process is stopped; SIGUSR1
    # prints every thread's stack (`kill -USR1 <pid>`: where a bench that seems stuck is)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rows, interrupted = [], ''
    for n in args.cells:
        if rows and not rows[-1]['up'] and not args.keep_going:
            rows.append({'cells': n, 'up': False, 'skipped': f'N={rows[-1]["cells"]} did not come up'})
            say(f'N={n}: skipped ({rows[-1]["skipped"]}; --keep-going tries it)')
            continue
        try:
            with tempfile.TemporaryDirectory(prefix=f'fleet_scale_{n}_') as tmp:
                try:
                    row = measure(n, args, Path(tmp), say)
                except Exception as exc:  # noqa: BLE001 - one N failing must not lose the others
                    row = {'cells': n, 'up': False, 'error': f'{type(exc).__name__}: {exc}'[:300]}
        except (KeyboardInterrupt, SystemExit) as exc:   # the cells are stopped: what was measured stays
            interrupted = f'interrupted at N={n} ({type(exc).__name__})'
            say(interrupted)
            break
        rows.append(row)
        if row['up']:
            say(f"N={n}: up in {row['up_s']} s, {row['processes']} processes, {row['participants']} DDS "
                f"participants (at most {row['participants_per_cell']} in a cell, "
                f"{row['cells_with_one_participant']}/{n} cells with one; ids by ports "
                f"{row['participant_ports']}); cores per cell idle "
                f"{row['idle_cores_per_cell']:.3f}, active {row['active_cores_per_cell']:.3f}; RTF mean "
                f"{row['rtf_mean']} (slowest {row['rtf_min']}, from {'/'.join(row['time_source'])}); "
                f"{row['trials_per_hour']} trials/h; load {row['load_avg_1m']:.1f}"
                + (f"; cells with more than one participant: {row['extra_participants']}"
                   if row['extra_participants'] else '')
                + (f"; not discovered by the bench's node: {row['cells_not_discovered']}"
                   if row.get('cells_not_discovered') else '')
                + ('' if row.get('fleet_closed', True) and row.get('driver_returned', True) else
                   f"; trials still in flight after the stop (fleet closed {row.get('fleet_closed')}, "
                   f"driver returned {row.get('driver_returned')})"))
        else:
            say(f'N={n}: not up ({row.get("error") or row.get("problems") or "ready checks pending"})')
        (out / 'fleet_scale.json').write_text(json.dumps(summary(rows), indent=1))
    final = {**summary(rows), 'bench_wall_s': round(time.monotonic() - t0, 1),
             **({'interrupted': interrupted} if interrupted else {})}
    (out / 'fleet_scale.json').write_text(json.dumps(final, indent=1))
    try:
        plot(rows, out / 'fleet_scale.png')
        say(f'plot: {out / "fleet_scale.png"}')
    except Exception as exc:  # noqa: BLE001 - the figures are in the JSON either way
        say(f'no plot: {type(exc).__name__}: {exc}')
    print(json.dumps(final), flush=True)
    return 143 if interrupted else 0


if __name__ == '__main__':
    sys.exit(main())
