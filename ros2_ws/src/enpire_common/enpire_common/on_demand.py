"""Subscriptions whose messages a node takes when it needs them, instead of one callback per message.

rclpy's executor spends ~0.5 ms of Python per delivered message (waking, rebuilding its wait set,
dispatching). Three cameras at 10 Hz, image + homography each, then cost a node 3% of a core even when
it looks at a frame once per trial, as the verify node does; eight cells on two cores starve on that.
These subscriptions belong to a companion node that no executor spins: DDS keeps the newest `depth`
messages of each topic in its reader cache, and `take(key)` hands them over on demand.

    sensors = OnDemandSubscriptions(node)                 # companion node '<node>_on_demand'
    sensors.add('top', Image, 'cameras/top/image_raw', qos_profile_sensor_data, raw=True)
    for data in sensors.take('top'): ...                 # everything received since the last take

Topic names are resolved (namespace and remapping) by the parent node, so the companion node subscribes
to exactly what the parent would have, and takes no process-wide arguments of its own (a `__node:=`
remap would otherwise give it the parent's name).

Lazy subscriptions exist only while their node needs the topic: a simulated cell renders and publishes
a camera only while someone subscribes to it, so an idle cell whose consumers hold no camera subscription
draws no frames at all. `open()` subscribes and waits until each subscription has matched the topic's
publishers (a message published after that reaches it); `close_later()` unsubscribes once the node has
not opened them again for a while (back-to-back trials keep theirs).

    sensors.add('top', Image, 'cameras/top/image_raw', qos_profile_sensor_data, lazy=True)
    streaming = sensors.open(['top'], timeout_s=2.0)      # the keys whose topic has a matched publisher
    ...
    sensors.close_later(5.0)
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rclpy.node import Node
from rclpy.parameter import Parameter

from enpire_common.executors import lean_subscription_events

__all__ = ['OnDemandSubscriptions', 'wait_matched']


def wait_matched(node: Node, subscriptions: list, timeout_s: float) -> bool:
    """Wait (wall s) until each subscription has matched a publisher of its topic where the graph shows
    one (a topic nobody publishes is not waited for); whether they all did."""
    deadline = time.monotonic() + timeout_s
    while any(not s.get_publisher_count() and node.count_publishers(s.topic_name) for s in subscriptions):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.002)
    return True


def _never_called(_msg) -> None:   # the companion node is never spun
    raise AssertionError('an on-demand subscription was dispatched by an executor')


@dataclass
class _Topic:
    msg_type: type
    topic: str
    qos: object
    raw: bool
    lazy: bool


class OnDemandSubscriptions:
    def __init__(self, parent: Node, suffix: str = '_on_demand'):
        self.parent = parent
        self.node = Node(parent.get_name() + suffix, namespace=parent.get_namespace(), context=parent.context,
                         use_global_arguments=False, enable_rosout=False, start_parameter_services=False,
                         # no executor spins this node: it must advertise no service that would never answer
                         parameter_overrides=[Parameter('start_type_description_service', value=False)])
        self._topics: dict[str, _Topic] = {}
        self._subs: dict[str, object] = {}
        self._lock = threading.Lock()
        self._close_timer: threading.Timer | None = None

    def add(self, key: str, msg_type, topic: str, qos, raw: bool = False, lazy: bool = False) -> str:
        """Subscribe to `topic` (resolved as the parent node resolves it; `lazy`: only between `open` and
        `close`); returns the resolved name."""
        resolved = self.parent.resolve_topic_name(topic)
        self._topics[key] = _Topic(msg_type, resolved, qos, raw, lazy)
        if not lazy:
            self._subscribe(key)
        return resolved

    def _subscribe(self, key: str) -> None:
        t = self._topics[key]
        self._subs[key] = self.node.create_subscription(t.msg_type, t.topic, _never_called, t.qos, raw=t.raw,
                                                        event_callbacks=lean_subscription_events())

    def lazy_keys(self) -> list[str]:
        return [key for key, t in self._topics.items() if t.lazy]

    def open(self, keys: list[str] | None = None, timeout_s: float = 2.0) -> set[str]:
        """Subscribe the lazy `keys` (all when None) not subscribed yet and wait (wall s) until each has
        matched the publishers the graph shows for its topic. The keys whose topic has a matched publisher
        (a topic nobody publishes, such as a real cell's homography, is not waited for)."""
        keys = self.lazy_keys() if keys is None else keys
        with self._lock:
            if self._close_timer is not None:
                self._close_timer.cancel()
                self._close_timer = None
            for key in keys:
                if key not in self._subs:
                    self._subscribe(key)
            subs = [self._subs[key] for key in keys]
        wait_matched(self.node, subs, timeout_s)
        return {key for key in keys if self.matched(key)}

    def matched(self, key: str) -> bool:
        """Whether `key` is subscribed and matched to a publisher."""
        sub = self._subs.get(key)
        return sub is not None and sub.get_publisher_count() > 0

    def close(self, keys: list[str] | None = None) -> None:
        """Unsubscribe the lazy `keys` (all when None); what they held is dropped."""
        with self._lock:
            self._unsubscribe(self.lazy_keys() if keys is None else keys)

    def _unsubscribe(self, keys: list[str]) -> None:
        for key in keys:
            sub = self._subs.pop(key, None)
            if sub is not None:
                self.node.destroy_subscription(sub)

    def close_later(self, delay_s: float, then: Callable[[], None] | None = None) -> None:
        """`close()` every lazy key in `delay_s` wall seconds, unless `open` comes first; `then()` right
        after that close, before any `open` can run (the parent's own subscriptions that go with them)."""
        with self._lock:
            if self._close_timer is not None:
                self._close_timer.cancel()
            timer = self._close_timer = threading.Timer(delay_s, lambda: self._close_if_unused(timer, then))
            timer.daemon = True
            timer.start()

    def _close_if_unused(self, timer: threading.Timer, then: Callable[[], None] | None) -> None:
        with self._lock:
            if self._close_timer is timer:      # not opened again (nor rescheduled) since
                self._close_timer = None
                self._unsubscribe(self.lazy_keys())
                if then is not None:
                    then()

    def take(self, key: str, with_info: bool = False) -> list:
        """Every message of `key` held since the last take, oldest first (raw CDR bytes if raw); with_info:
        (message, info) pairs, info['received_timestamp'] the arrival in ns on the system clock. Nothing
        for a lazy key that is not open."""
        out = []
        with self._lock:
            sub = self._subs.get(key)
            if sub is None:
                return out
            with sub.handle:
                while True:
                    got = sub.handle.take_message(sub.msg_type, sub.raw)
                    if got is None:
                        return out
                    out.append(got if with_info else got[0])

    def destroy(self) -> None:
        with self._lock:
            if self._close_timer is not None:
                self._close_timer.cancel()
        self.node.destroy_node()
