"""The rate of a stream (camera frames, commands) judged as diagnostic_updater's FrequencyStatus does.
Pure: no rclpy; nodes turn a `RateReport` into a diagnostic_msgs/DiagnosticStatus.

Ticks are counted over a sliding window of `window` publish periods: no tick in the window is ERROR
("no events"; OK when `min_hz` is 0: an idle command stream), a rate below `min_hz * (1 - tolerance)`
or above `max_hz * (1 + tolerance)` is WARN, anything else OK. The values carry diagnostic_updater's keys.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

OK, WARN, ERROR = 0, 1, 2


@dataclass
class RateReport:
    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)


class FrequencyStatus:
    def __init__(self, min_hz: float, max_hz: float = float('inf'), tolerance: float = 0.1, window: int = 5):
        if min_hz < 0 or max_hz < min_hz:
            raise ValueError(f'need 0 <= min_hz <= max_hz, got {min_hz}, {max_hz}')
        self.min_hz, self.max_hz, self.tolerance = min_hz, max_hz, tolerance
        self.count = 0
        self._history: deque[tuple[float, int]] = deque(maxlen=window)

    def tick(self, n: int = 1) -> None:
        self.count += n

    def report(self, now: float) -> RateReport:
        """Called once per publish period: the rate over the last `window` periods."""
        if not self._history:
            self._history.append((now, self.count))
        t0, c0 = self._history[0]
        self._history.append((now, self.count))
        events, span = self.count - c0, now - t0
        rate = events / span if span > 0 else 0.0
        values = {'Events in window': str(events), 'Events since startup': str(self.count),
                  'Duration of window (s)': f'{span:.3f}', 'Actual frequency (Hz)': f'{rate:.3f}',
                  'Minimum acceptable frequency (Hz)': f'{self.min_hz:.3f}',
                  'Maximum acceptable frequency (Hz)': f'{self.max_hz:.3f}'}
        if span <= 0:
            return RateReport(OK, 'Measuring the rate', values)
        if events == 0:   # a stream nobody requires (min_hz 0) may be idle
            return RateReport(ERROR, 'No events recorded.', values) if self.min_hz > 0 else \
                RateReport(OK, 'No events (none required)', values)
        if rate < self.min_hz * (1 - self.tolerance):
            return RateReport(WARN, 'Frequency too low.', values)
        if rate > self.max_hz * (1 + self.tolerance):
            return RateReport(WARN, 'Frequency too high.', values)
        return RateReport(OK, 'Desired frequency met', values)


def diagnostic_status(name: str, hardware_id: str, report: RateReport):
    """The report as a diagnostic_msgs/DiagnosticStatus (imported here: the rest of the module is pure)."""
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    return DiagnosticStatus(level=bytes([report.level]), name=name, message=report.message,
                            hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=v) for k, v in report.values.items()])
