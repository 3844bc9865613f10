"""Checks for learner code: immediate, specific feedback instead of a bare traceback.

Introduced in notebook 00; every exercise from notebook 01 on ends with one of these.

- :func:`relative_error` — how far apart two results are, relative to their size;
- :func:`check_close` — a learner's result against a reference value;
- :func:`check_shape` — a tensor's shape against a pattern such as ``("B", 8, "D")``;
- :func:`check_gradient` — autograd's gradient against finite differences in float64;
- :func:`check_function` — a learner's function against a reference function on several inputs.

A check that passes prints one line starting with ``✓``. A check that fails raises
:class:`CheckFailed` (an ``AssertionError``) whose message says what differs, where, and what
usually causes it. An exercise that still holds its ``raise NotImplementedError`` stub is
reported as not done yet, not as a crash.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "CheckFailed",
    "relative_error",
    "check_close",
    "check_shape",
    "check_gradient",
    "check_function",
]

# Below this size two results count as "both zero": the denominator of the relative error.
TINY = 1e-12
NOT_DONE = "this exercise is not done yet: replace the `raise NotImplementedError` with your code"


class CheckFailed(AssertionError):
    """A learner check did not pass; the message explains what differs and why it may."""


# --------------------------------------------------------------------------- helpers


def _as_array(value: Any) -> np.ndarray:
    """A tensor, array or number as a float64 (or complex128) NumPy array, for comparing."""
    if isinstance(value, Tensor):
        value = value.detach().cpu()
        value = value.resolve_conj() if value.is_complex() else value.to(torch.float64)
        value = value.numpy()
    array = np.asarray(value)
    return array.astype(np.complex128 if np.iscomplexobj(array) else np.float64)


def _describe_type(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a torch.Tensor of dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"a numpy.ndarray of dtype {value.dtype}"
    kind = type(value)
    return f"a {kind.__name__}" if kind.__module__ == "builtins" else f"a {kind.__module__}.{kind.__name__}"


def _index(flat_index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat_index, shape)) if shape else ()


def _learner_line(error: BaseException) -> str:
    """Where in the learner's code an exception started: the deepest frame outside libraries."""
    package = Path(__file__).parent
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if Path(f.filename).parent != package and "-packages" not in f.filename
    ]
    if not frames:
        return ""
    return f" (in {frames[-1].name}, line {frames[-1].lineno}: `{(frames[-1].line or '').strip()}`)"


def _call_learner(fn: Callable, args: Sequence, kwargs: dict, name: str) -> Any:
    """Run learner code and turn any exception into a friendly :class:`CheckFailed`."""
    __tracebackhide__ = True  # pytest and IPython leave such frames out, so the message stands out
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed(f"{name}: {NOT_DONE}") from None
    except CheckFailed:
        raise
    except Exception as error:  # any learner bug becomes feedback that keeps its type and text
        where = _learner_line(error)
        if where:
            advice = "Fix that line and run this check again."
        else:  # it failed on the call itself, usually a signature that does not fit
            extra = f" and the keywords {', '.join(kwargs)}" if kwargs else ""
            advice = (
                f"The check called it with {len(args)} positional argument(s){extra}: does its signature fit?"
            )
        raise CheckFailed(f"{name} raised {type(error).__name__}: {error}{where}\n{advice}") from None


# --------------------------------------------------------------------------- relative error


def relative_error(actual: Any, expected: Any) -> float:
    """``max|a - e| / max(|a| + |e|)``: the largest difference relative to the size of the values.

    Introduced in notebook 00. Taking both maxima over the whole tensor keeps entries near
    zero from inflating the error. About 1e-7 is float32 round-off, 1e-16 float64 round-off;
    two zero tensors have error 0. Shapes must broadcast.
    """
    a, e = _as_array(actual), _as_array(expected)
    try:
        difference = np.abs(a - e)
    except ValueError:
        raise ValueError(f"expected two values of the same shape, got {a.shape} and {e.shape}") from None
    if difference.size == 0:
        return 0.0
    scale = np.max(np.abs(a) + np.abs(e))
    return float(np.max(difference) / max(scale, TINY))


# --------------------------------------------------------------------------- check_close


def _type_problem(actual: Any, expected: Any, name: str) -> str | None:
    """Why ``actual`` cannot be compared with ``expected``, or None when it can."""
    if actual is None:
        return f"{name} is None: did your function forget its `return` statement?"
    if isinstance(expected, Tensor) and not isinstance(actual, Tensor):
        hint = " (torch.from_numpy turns an array into a tensor)" if isinstance(actual, np.ndarray) else ""
        return f"expected {name} to be a torch.Tensor, got {_describe_type(actual)}{hint}"
    if isinstance(expected, np.ndarray) and not isinstance(actual, (np.ndarray, Tensor)):
        return f"expected {name} to be a numpy.ndarray, got {_describe_type(actual)}"
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if isinstance(actual, Tensor) and actual.numel() == 1:
            return None
        if not isinstance(actual, (int, float, np.number)) or isinstance(actual, bool):
            return f"expected {name} to be a number, got {_describe_type(actual)}"
    return None


def _dtype_problem(actual: Tensor, expected: Tensor, name: str) -> str | None:
    if actual.dtype == expected.dtype:
        return None
    message = f"expected {name} of dtype {expected.dtype}, got {actual.dtype}"
    if expected.is_floating_point() and not actual.is_floating_point():
        return message + ": integer or bool results lose the fractions; compute in floating point"
    if actual.dtype == torch.float64 and expected.dtype == torch.float32:
        return (
            message
            + ": a float64 NumPy array or torch.tensor(..., dtype=torch.float64) upcasts everything it touches"
        )
    return message + ": convert with .to(" + str(expected.dtype) + ") or find where the dtype changed"


def _shape_problem(actual: tuple, expected: tuple, name: str) -> str:
    message = f"expected {name} of shape {expected}, got {actual}"
    if abs(len(actual) - len(expected)) == 1 and [s for s in actual if s != 1] == [
        s for s in expected if s != 1
    ]:
        return (
            message
            + ": a dimension of size 1 is missing or extra; a reduction may need keepdim=True, or a squeeze/unsqueeze is missing"
        )
    if len(actual) == len(expected) and sorted(actual) == sorted(expected):
        return (
            message
            + ": the same sizes in another order; check transpose/permute and which dimension is which"
        )
    if math.prod(actual) == math.prod(expected):
        return message + ": the same number of elements; check your reshape/view"
    return message


def _value_hints(
    a: np.ndarray, e: np.ndarray, yours: str = "your result", reference: str = "the reference"
) -> list[str]:
    """Common reasons for a mismatch that can be read off the two arrays, as sentences."""
    if np.isnan(a).any() and not np.isnan(e).any():
        return [f"{yours} contains NaN: an overflowing exp, a division by zero or the log of 0?"]
    if np.isinf(a).any() and not np.isinf(e).any():
        return [f"{yours} contains inf: an overflowing exp? Subtract the maximum first."]
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(e)) and np.any(e != 0)):
        return []
    factor = float(np.vdot(e, a).real / np.vdot(e, e).real)
    if relative_error(a, factor * e) < 1e-4 and abs(factor - 1) > 1e-4:
        if abs(factor + 1) < 1e-4:
            return [f"{yours} is {reference} with the sign flipped."]
        return [f"{yours} is {reference} times {factor:.4g}: a missing or extra scale factor (such as 1/√d)?"]
    if a.ndim >= 2 and a.shape[-1] == a.shape[-2] and relative_error(a, np.swapaxes(e, -1, -2)) < 1e-4:
        return [f"{yours} equals {reference} transposed (last two dimensions swapped)."]
    if relative_error(a, e) < 1e-3:
        return [
            "close, but not within the tolerance: a small difference such as an epsilon, or float precision?"
        ]
    return []


def _compare(actual: Any, expected: Any, rtol: float, atol: float, name: str, check_dtype: bool) -> float:
    """Raise CheckFailed with an explanation unless ``actual`` matches; return the relative error."""
    __tracebackhide__ = True
    if isinstance(expected, (tuple, list)):
        if not isinstance(actual, (tuple, list)) or len(actual) != len(expected):
            raise CheckFailed(
                f"expected {name} to be a {type(expected).__name__} of {len(expected)} values, got {_describe_type(actual)}"
                + (f" of {len(actual)}" if isinstance(actual, (tuple, list)) else "")
            )
        errors = [
            _compare(a, e, rtol, atol, f"{name}[{i}]", check_dtype)
            for i, (a, e) in enumerate(zip(actual, expected))
        ]
        return max(errors, default=0.0)
    problem = _type_problem(actual, expected, name)
    if problem:
        raise CheckFailed(problem)
    if check_dtype and isinstance(actual, Tensor) and isinstance(expected, Tensor):
        problem = _dtype_problem(actual, expected, name)
        if problem:
            raise CheckFailed(problem)
    a, e = _as_array(actual), _as_array(expected)
    if isinstance(expected, (int, float)):
        a = a.reshape(())
    if a.shape != e.shape:
        raise CheckFailed(_shape_problem(a.shape, e.shape, name))
    # NaN where the reference has NaN, and equal infinities, count as agreement.
    same = (np.isnan(a) & np.isnan(e)) | (a == e)
    difference = np.where(same, 0.0, np.abs(a - e))
    difference = np.where(np.isnan(difference), np.inf, difference)
    finite = np.where(np.isfinite(a) & np.isfinite(e), np.abs(a) + np.abs(e), 0.0)
    scale = float(np.max(finite)) if finite.size else 0.0
    worst = float(np.max(difference)) if difference.size else 0.0
    error = worst / max(scale, TINY)
    if worst <= atol + rtol * scale:
        return error
    flat = int(np.argmax(difference))
    at = _index(flat, a.shape)
    bad = int(np.sum(difference > atol + rtol * scale))
    lines = [
        f"{name} does not match the reference: relative error {error:.1e} (allowed {rtol:.0e}).",
        (
            f"The largest difference is at index {at}: yours is {a.flat[flat]:.6g}, the reference {e.flat[flat]:.6g}."
            if at
            else f"Yours is {a.flat[flat]:.6g}, the reference {e.flat[flat]:.6g}."
        ),
    ]
    if a.size > 1:
        lines.append(f"{bad} of {a.size} values are off.")
    lines += [f"Hint: {hint}" for hint in _value_hints(a, e)]
    raise CheckFailed("\n".join(lines))


def check_close(
    actual: Any,
    expected: Any,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    name: str = "your result",
    *,
    check_dtype: bool = True,
) -> None:
    """Check a learner's result against a reference and print ``✓ ...`` when they match.

    Introduced in notebook 00. Tensors, arrays, numbers, or tuples/lists of them. They match
    when ``max|a - e| <= atol + rtol * max(|a| + |e|)`` (see :func:`relative_error`); the
    types, shapes and (for tensors, unless ``check_dtype=False``) dtypes must agree. NaN in the
    same places counts as equal. Raises :class:`CheckFailed` saying where the largest difference
    is, the values there, and likely causes (a constant factor, a transpose, NaN, ...).
    """
    __tracebackhide__ = True
    if not (rtol >= 0 and atol >= 0):
        raise ValueError(f"expected rtol >= 0 and atol >= 0, got rtol={rtol}, atol={atol}")
    error = _compare(actual, expected, rtol, atol, name, check_dtype)
    print(f"✓ {name} matches the reference: max relative error {error:.1e}")


# --------------------------------------------------------------------------- check_shape


def check_shape(
    tensor: Any, expected: Sequence[int | str | None], name: str = "tensor", **known: int
) -> dict[str, int]:
    """Check a shape against a pattern and return the sizes the names stand for.

    Introduced in notebook 00. ``expected`` holds ints (that exact size), strings (a size
    that must be the same wherever the name appears) and None (any size), e.g.
    ``check_shape(x, ("B", 8, "D"))`` accepts ``(2, 8, 16)`` and returns ``{"B": 2, "D": 16}``.
    Keyword arguments fix names in advance: ``check_shape(y, ("B", "T"), B=2)``.
    """
    __tracebackhide__ = True
    shape = getattr(tensor, "shape", None)
    if shape is None:
        raise CheckFailed(f"expected {name} to be a tensor with a shape, got {_describe_type(tensor)}")
    shape = tuple(int(s) for s in shape)
    pattern = (
        "("
        + ", ".join("?" if d is None else str(d) for d in expected)
        + ("," if len(expected) == 1 else "")
        + ")"
    )
    if len(shape) != len(expected):
        raise CheckFailed(
            f"expected {name} of shape {pattern} ({len(expected)} dimensions), got {shape} ({len(shape)} dimensions)"
        )
    sizes = dict(known)
    for axis, (size, want) in enumerate(zip(shape, expected)):
        if isinstance(want, str):
            if want in sizes and sizes[want] != size:
                where = "given" if want in known else "set by an earlier dimension"
                raise CheckFailed(
                    f"expected {name} of shape {pattern}, got {shape}: dimension {axis} is {want}, "
                    f"which is {sizes[want]} ({where}), but here it is {size}"
                )
            sizes[want] = size
        elif want is not None and want != size:
            raise CheckFailed(
                f"expected {name} of shape {pattern}, got {shape}: dimension {axis} should be {want}, got {size}"
            )
    named = ", ".join(f"{k}={v}" for k, v in sizes.items())
    print(f"✓ {name} has shape {shape}" + (f" ({named})" if named else ""))
    return sizes


# --------------------------------------------------------------------------- check_gradient


def _float64_leaf(value: Any) -> Any:
    """A floating tensor as a fresh float64 leaf that autograd tracks; anything else unchanged."""
    if isinstance(value, Tensor) and value.is_floating_point():
        return value.detach().to(torch.float64).clone().requires_grad_(True)
    return value


def _numerical_gradient(loss: Callable[..., float], args: list, i: int, eps: float) -> np.ndarray:
    """Central differences ``(loss(x + eps) - loss(x - eps)) / (2 eps)`` for each element of ``args[i]``."""
    point = [a.detach() if isinstance(a, Tensor) else a for a in args]
    flat = point[i].view(-1)  # shares memory with point[i]: nudging it nudges the input
    gradient = np.zeros(flat.numel())
    with torch.no_grad():
        for j in range(flat.numel()):
            original = flat[j].item()
            flat[j] = original + eps
            upper = loss(*point)
            flat[j] = original - eps
            lower = loss(*point)
            flat[j] = original
            gradient[j] = (upper - lower) / (2 * eps)
    return gradient.reshape(tuple(point[i].shape))


def check_gradient(
    fn: Callable[..., Tensor],
    inputs: Tensor | Sequence[Any],
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    name: str | None = None,
    seed: int = 0,
) -> None:
    """Check autograd's gradient of ``fn(*inputs)`` against central finite differences.

    Introduced in notebook 01. Every floating input is copied to float64; other inputs pass
    through unchanged. The output (a tensor, any shape) is reduced to a scalar with fixed random
    weights ``L = sum(w * fn(*inputs))``; its gradient from ``backward`` must match
    ``(L(x + eps) - L(x - eps)) / (2 eps)`` element by element, within
    ``atol + rtol * max(|autograd| + |numerical|)``. This costs two calls of ``fn`` per input
    element, so use small inputs. Prints ``✓ ...`` or raises :class:`CheckFailed`.
    """
    __tracebackhide__ = True
    name = name or getattr(fn, "__name__", "your function")
    args = [_float64_leaf(a) for a in (inputs if isinstance(inputs, (tuple, list)) else [inputs])]
    wrt = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    if not wrt:
        raise ValueError("expected at least one floating-point tensor among the inputs to differentiate")

    output = _call_learner(fn, args, {}, name)
    if not isinstance(output, Tensor):
        raise CheckFailed(f"expected {name} to return a torch.Tensor, got {_describe_type(output)}")
    if output.dtype != torch.float64:
        raise CheckFailed(
            f"{name} returned {output.dtype} for float64 inputs; the check needs the whole computation "
            "in float64: avoid .float() and hard-coded dtype=torch.float32"
        )
    if not output.requires_grad:
        raise CheckFailed(
            f"the output of {name} is not connected to its inputs in autograd: "
            "did you use .detach(), .item(), .numpy(), .data or torch.no_grad() inside?"
        )
    weights = torch.randn(output.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    analytic = torch.autograd.grad((weights * output).sum(), [args[i] for i in wrt], allow_unused=True)

    worst_error = 0.0
    for i, grad in zip(wrt, analytic):
        if args[i].numel() == 0:
            continue
        a = np.zeros(tuple(args[i].shape)) if grad is None else grad.detach().numpy()
        n = _numerical_gradient(lambda *xs: (weights * fn(*xs)).sum().item(), args, i, eps)
        difference = np.abs(a - n)
        scale = float(np.max(np.abs(a) + np.abs(n)))
        error = float(np.max(difference)) / max(scale, TINY)
        worst_error = max(worst_error, error)
        if np.max(difference) <= atol + rtol * scale:
            continue
        at = int(np.argmax(difference))
        lines = [
            f"the gradient of {name} with respect to input {i} (shape {a.shape}) does not match "
            f"finite differences: relative error {error:.1e} (allowed {rtol:.0e}).",
            f"The largest difference is at index {_index(at, a.shape)}: autograd gives {a.flat[at]:.6g}, "
            f"finite differences {n.flat[at]:.6g} (gradients of a fixed random weighting of the output).",
        ]
        if not np.any(a):
            lines.append(
                "Hint: autograd gives zero gradient: is this input used, or cut off by .detach()/.data?"
            )
        else:
            lines += [
                f"Hint: {hint}" for hint in _value_hints(a, n, "autograd's gradient", "the numerical one")
            ]
        raise CheckFailed("\n".join(lines))
    print(f"✓ the gradient of {name} matches finite differences: max relative error {worst_error:.1e}")


# --------------------------------------------------------------------------- check_function


def _like(example: Any, generator: torch.Generator) -> Any:
    """A random input of the same kind as ``example``: same shape, dtype and range of values.

    Floats are drawn uniformly between the example's minimum and maximum (so positive inputs
    stay positive), integers likewise; booleans (masks) and non-tensors are kept as given.
    """
    if not isinstance(example, Tensor) or example.numel() == 0 or example.dtype == torch.bool:
        return example
    low, high = example.min(), example.max()
    if low == high:
        return example.clone()
    if example.is_floating_point():
        u = torch.rand(example.shape, generator=generator, dtype=torch.float64)
        return (low.double() + u * (high.double() - low.double())).to(example.dtype)
    return torch.randint(int(low), int(high) + 1, example.shape, generator=generator, dtype=example.dtype)


def _unchanged(before: Tensor, after: Tensor) -> bool:
    after = after.detach()
    same = (
        (before == after) | (before.isnan() & after.isnan())
        if before.is_floating_point()
        else before == after
    )
    return bool(same.all())


def _copy(value: Any) -> Any:
    return value.detach().clone() if isinstance(value, Tensor) else value


def check_function(
    learner_fn: Callable,
    reference_fn: Callable,
    *example_inputs: Any,
    trials: int = 3,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    name: str | None = None,
    seed: int = 0,
    kwargs: dict | None = None,
    check_dtype: bool = True,
) -> None:
    """Run ``learner_fn`` and ``reference_fn`` on the same inputs and check that they agree.

    Introduced in notebook 00. The first trial uses ``example_inputs`` as given; each further
    trial draws random inputs of the same shapes, dtypes and value ranges (boolean masks and
    non-tensor arguments are kept). ``kwargs`` go to both functions unchanged. Results are
    compared as in :func:`check_close`. Also fails when the learner's function changes its
    inputs in place. Exceptions from the learner's code (including an unfinished
    ``raise NotImplementedError`` stub) become a :class:`CheckFailed` message.
    """
    __tracebackhide__ = True
    name = name or getattr(learner_fn, "__name__", "your function")
    if not callable(learner_fn) or not callable(reference_fn):
        raise TypeError(
            f"expected two functions, got {_describe_type(learner_fn)} and {_describe_type(reference_fn)}"
        )
    if not isinstance(trials, int) or trials < 1:
        raise ValueError(f"expected trials to be a positive int, got {trials!r}")
    kwargs = kwargs or {}
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for trial in range(trials):
        inputs = list(example_inputs) if trial == 0 else [_like(x, generator) for x in example_inputs]
        given = [_copy(x) for x in inputs]
        actual = _call_learner(learner_fn, given, kwargs, name)
        for position, (before, after) in enumerate(zip(inputs, given)):
            if isinstance(before, Tensor) and not _unchanged(before, after):
                raise CheckFailed(
                    f"{name} changed its input {position} in place; compute a new tensor instead "
                    "(write x = x - m rather than x -= m, avoid methods ending in _)"
                )
        expected = reference_fn(*[_copy(x) for x in inputs], **kwargs)
        label = name if trial == 0 else f"{name} (random input #{trial})"
        worst = max(worst, _compare(actual, expected, rtol, atol, label, check_dtype))
    print(
        f"✓ {name} matches the reference on {trials} input{'s' if trials > 1 else ''}: max relative error {worst:.1e}"
    )
