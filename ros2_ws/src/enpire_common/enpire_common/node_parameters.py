"""Node parameters declared from a pydantic model: one place for defaults, descriptions and ranges.

    config = declare_parameters(node, TrialServerConfig, runtime={'step_deadline_s'}, on_change=apply)

Every field becomes a parameter with a ParameterDescriptor (its description, its range); fields outside
`runtime` are read-only (rclpy refuses a change with the reason). A change of a run-time field is checked
against the model (finite, in range, cross-field rules) and refused with the model's reason; accepted,
`on_change(new_config)` gets the validated model. No rclpy import: the node is passed in.
"""
from __future__ import annotations

import sys
from collections.abc import Callable

from pydantic import BaseModel, ValidationError
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult

_INT64_MAX = 2**63 - 1


def _bounds(field) -> tuple[float | None, float | None]:
    """(lower, upper) of a field's ge/gt/le/lt constraints (pydantic keeps them as annotated_types)."""
    lo = hi = None
    for meta in field.metadata:
        for name in ('ge', 'gt'):
            lo = getattr(meta, name, lo)
        for name in ('le', 'lt'):
            hi = getattr(meta, name, hi)
    return lo, hi


def descriptor(model: type[BaseModel], name: str, read_only: bool) -> ParameterDescriptor:
    field = model.model_fields[name]
    text = field.description or name
    text += '' if read_only else ' (changeable at run time)'
    desc = ParameterDescriptor(name=name, description=text, read_only=read_only)
    lo, hi = _bounds(field)
    if lo is None and hi is None:
        return desc
    if field.annotation is float:
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(lo if lo is not None else -sys.float_info.max),
            to_value=float(hi if hi is not None else sys.float_info.max), step=0.0)]
    elif field.annotation is int:
        desc.integer_range = [IntegerRange(from_value=int(lo if lo is not None else -_INT64_MAX),
                                           to_value=int(hi if hi is not None else _INT64_MAX), step=1)]
    return desc


def declare_parameters(node, model: type[BaseModel], runtime: frozenset[str] | set[str] = frozenset(),
                       on_change: Callable[[BaseModel], None] | None = None) -> BaseModel:
    """Declare every field of `model` on `node`; returns the validated start-up configuration."""
    values = {}
    for name, field in model.model_fields.items():
        default = field.get_default(call_default_factory=True)
        desc = descriptor(model, name, name not in runtime)
        values[name] = node.declare_parameter(name, default, desc).value
    config = model(**values)
    state = {'config': config}

    def check(params) -> SetParametersResult:
        changes = {p.name: p.value for p in params if p.name in model.model_fields}
        refused = sorted(set(changes) - set(runtime))
        if refused:
            return SetParametersResult(successful=False,
                                       reason=f'read-only after start-up: {", ".join(refused)}')
        try:
            new = model(**{**state['config'].model_dump(), **changes})
        except ValidationError as exc:
            why = '; '.join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
            return SetParametersResult(successful=False, reason=f'refused: {why}')
        state['config'] = new
        if on_change is not None:
            on_change(new)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(check)
    return config
