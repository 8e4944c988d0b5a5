"""Parameter descriptors in one line each (description, range, read-only) and the check rclpy leaves out.

rclpy refuses, with a reason, a change to a read-only parameter and a value outside a declared range
(also when the value is given at start-up). `refuse_non_finite` (an on-set-parameters callback) refuses
NaN and infinities for every floating-point parameter, which a range alone does not cover.
"""
from __future__ import annotations

import math

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult


def describe(description: str, *, read_only: bool = False, low: float | None = None,
             high: float | None = None, integer: bool = False, constraints: str = '') -> ParameterDescriptor:
    """A descriptor; `low`/`high` give an inclusive range (integer or floating point)."""
    descriptor = ParameterDescriptor(description=description, read_only=read_only,
                                     additional_constraints=constraints)
    if low is not None or high is not None:
        if integer:
            descriptor.integer_range = [IntegerRange(from_value=int(low if low is not None else -2**63),
                                                     to_value=int(high if high is not None else 2**63 - 1))]
        else:
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(low if low is not None else -1e300),
                to_value=float(high if high is not None else 1e300))]
    return descriptor


def refuse_non_finite(params) -> SetParametersResult:
    """Refuse NaN / infinite values (also inside float arrays), saying which parameter."""
    for param in params:
        values = param.value if isinstance(param.value, (list, tuple)) else [param.value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            reason = f'refused: {param.name} must be a finite number, got {param.value}'
            return SetParametersResult(successful=False, reason=reason)
    return SetParametersResult(successful=True)
