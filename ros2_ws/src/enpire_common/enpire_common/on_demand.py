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
"""
from __future__ import annotations

import threading

from rclpy.node import Node
from rclpy.parameter import Parameter

from enpire_common.executors import lean_subscription_events

__all__ = ['OnDemandSubscriptions']


def _never_called(_msg) -> None:   # the companion node is never spun
    raise AssertionError('an on-demand subscription was dispatched by an executor')


class OnDemandSubscriptions:
    def __init__(self, parent: Node, suffix: str = '_on_demand'):
        self.parent = parent
        self.node = Node(parent.get_name() + suffix, namespace=parent.get_namespace(), context=parent.context,
                         use_global_arguments=False, enable_rosout=False, start_parameter_services=False,
                         # no executor spins this node: it must advertise no service that would never answer
                         parameter_overrides=[Parameter('start_type_description_service', value=False)])
        self._subs: dict[str, object] = {}
        self._lock = threading.Lock()

    def add(self, key: str, msg_type, topic: str, qos, raw: bool = False) -> str:
        """Subscribe to `topic` (resolved as the parent node resolves it); returns the resolved name."""
        resolved = self.parent.resolve_topic_name(topic)
        self._subs[key] = self.node.create_subscription(msg_type, resolved, _never_called, qos, raw=raw,
                                                        event_callbacks=lean_subscription_events())
        return resolved

    def take(self, key: str, with_info: bool = False) -> list:
        """Every message of `key` held since the last take, oldest first (raw CDR bytes if raw); with_info:
        (message, info) pairs, info['received_timestamp'] the arrival in ns on the system clock."""
        sub = self._subs[key]
        out = []
        with self._lock, sub.handle:
            while True:
                got = sub.handle.take_message(sub.msg_type, sub.raw)
                if got is None:
                    return out
                out.append(got if with_info else got[0])

    def destroy(self) -> None:
        self.node.destroy_node()
