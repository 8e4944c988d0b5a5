"""The trial server's state on /diagnostics (diagnostic_msgs conventions), from its own trial events.

OK while idle or running, WARN after an aborted trial (until the next one finishes), with the counts,
the trial running and the time since the last event. `TrialStatus` is pure; `TrialDiagnostics` attaches
it to a node: it listens to the node's own `trial_events` (a few per trial) and publishes once a period.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

OK, WARN = 0, 1


@dataclass
class TrialStatus:
    counts: dict[str, int] = field(default_factory=dict)
    running: str = ''
    last_event: str = ''
    last_event_at: float | None = None
    last_aborted: str = ''

    def on_event(self, trial_id: str, event: str, now: float) -> None:
        self.counts[event] = self.counts.get(event, 0) + 1
        self.last_event, self.last_event_at = event, now
        if event == 'started':
            self.running = trial_id
        elif event in ('finished', 'aborted'):
            self.running = ''
            self.last_aborted = trial_id if event == 'aborted' else ''

    def report(self, now: float) -> tuple[int, str, dict[str, str]]:
        values = {'trials started': str(self.counts.get('started', 0)),
                  'trials finished': str(self.counts.get('finished', 0)),
                  'trials aborted': str(self.counts.get('aborted', 0)),
                  'running trial': self.running or '-', 'last event': self.last_event or '-',
                  'seconds since last event': '-' if self.last_event_at is None
                  else f'{now - self.last_event_at:.1f}'}
        if self.last_aborted:
            return WARN, f'trial {self.last_aborted} aborted', values
        return OK, f'running {self.running}' if self.running else 'idle', values


class TrialDiagnostics:
    def __init__(self, node, period_s: float = 1.0):
        from diagnostic_msgs.msg import DiagnosticArray
        from enpire_common import names
        from rclpy.clock import Clock, ClockType

        from enpire_interfaces.msg import TrialEvent

        self.node = node
        self.status = TrialStatus()
        self.pub = node.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        node.create_subscription(TrialEvent, names.TRIAL_EVENTS, self.on_event, 100)
        # A heartbeat on the steady clock: a lockstep cell's sim time stands still while it idles.
        node.create_timer(period_s, self.publish, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def on_event(self, msg) -> None:
        self.status.on_event(msg.trial_id, msg.event, time.monotonic())

    def publish(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

        level, message, values = self.status.report(time.monotonic())
        name = f'{self.node.get_fully_qualified_name()}: trials'
        status = DiagnosticStatus(level=bytes([level]), name=name, message=message,
                                  hardware_id=self.node.get_namespace(),
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.node.get_clock().now().to_msg()
        self.pub.publish(array)
