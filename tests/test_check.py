"""mmcourse.check: relative errors against hand-computed values, friendly failures, and the
gradient check against torch.autograd.gradcheck."""

import numpy as np
import pytest
import torch

from mmcourse.check import (
    CheckFailed,
    check_close,
    check_function,
    check_gradient,
    check_shape,
    relative_error,
)


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def stable_softmax(x, dim=-1):
    e = torch.exp(x - x.amax(dim, keepdim=True))
    return e / e.sum(dim, keepdim=True)


class SquareWithWrongBackward(torch.autograd.Function):
    """x² whose backward returns 3x instead of 2x: the bug the gradient check must catch."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x


class SoftmaxSlightlyWrongBackward(torch.autograd.Function):
    """Softmax whose backward is 1 % too large."""

    @staticmethod
    def forward(ctx, x):
        y = torch.softmax(x, -1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return 1.01 * y * (grad - (grad * y).sum(-1, keepdim=True))


# --------------------------------------------------------------------------- relative_error


def test_relative_error_matches_hand_computed_values():
    # max|a - e| = 0.5; max(|a| + |e|) = 2 + 2.5 = 4.5
    assert relative_error(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5])) == pytest.approx(0.5 / 4.5)
    assert relative_error(np.array([0.0]), np.array([1e-3])) == pytest.approx(1.0)
    assert relative_error(torch.zeros(3), torch.zeros(3)) == 0.0
    assert relative_error(3.0, 1.0) == pytest.approx(2.0 / 4.0)


def test_relative_error_rejects_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match=r"same shape, got \(2,\) and \(3,\)"):
        relative_error(torch.zeros(2), torch.zeros(3))


# --------------------------------------------------------------------------- check_close


def test_check_close_passes_and_says_so(capsys):
    x = torch.randn(4, 6)
    check_close(stable_softmax(x), torch.softmax(x, -1), name="softmax")
    out = capsys.readouterr().out
    assert out.startswith("✓ softmax matches the reference: max relative error ")
    reported = float(out.split()[-1])
    assert reported == pytest.approx(
        relative_error(stable_softmax(x), torch.softmax(x, -1)), rel=0.06, abs=1e-12
    )
    assert reported < 1e-6


def test_check_close_tolerance_is_relative_to_the_size_of_the_values():
    expected = torch.tensor([1000.0, 2000.0], dtype=torch.float64)
    check_close(expected * (1 + 1e-6), expected, rtol=1e-5)
    with pytest.raises(CheckFailed):
        check_close(expected * (1 + 1e-6), expected, rtol=1e-7)


def test_check_close_failure_names_the_worst_entry_and_its_values():
    expected = torch.zeros(3, 4)
    actual = expected.clone()
    actual[1, 2] = 5.0
    actual[0, 0] = 0.5
    with pytest.raises(CheckFailed, match=r"index \(1, 2\): yours is 5, the reference 0") as info:
        check_close(actual, expected, name="scores")
    assert isinstance(info.value, AssertionError)
    assert "scores does not match the reference" in str(info.value)
    assert "2 of 12 values are off" in str(info.value)


def test_check_close_hints_at_a_constant_factor_a_sign_and_a_transpose():
    x = torch.randn(5, 5)
    with pytest.raises(CheckFailed, match=r"times 0\.25"):
        check_close(x / 4, x)
    with pytest.raises(CheckFailed, match="sign flipped"):
        check_close(-x, x)
    with pytest.raises(CheckFailed, match="transposed"):
        check_close(x.T.contiguous(), x)


def test_check_close_explains_nan_and_accepts_nan_in_the_same_places():
    expected = torch.tensor([0.5, float("nan"), 0.5])
    check_close(expected.clone(), expected)
    with pytest.raises(CheckFailed, match="contains NaN"):
        check_close(torch.tensor([float("nan"), 0.0, 0.5]), torch.tensor([0.5, 0.0, 0.5]))


def test_check_close_shape_mismatch_names_both_shapes():
    with pytest.raises(CheckFailed, match=r"expected out of shape \(2, 3\), got \(3, 2\): .*transpose"):
        check_close(torch.zeros(3, 2), torch.zeros(2, 3), name="out")
    with pytest.raises(CheckFailed, match=r"shape \(2, 1\), got \(2,\): .*keepdim=True"):
        check_close(torch.zeros(2), torch.zeros(2, 1))


def test_check_close_explains_type_and_dtype_mismatches():
    ref = torch.ones(2)
    with pytest.raises(CheckFailed, match="None: did your function forget its `return`"):
        check_close(None, ref)
    with pytest.raises(CheckFailed, match="expected your result to be a torch.Tensor, got a numpy.ndarray"):
        check_close(np.ones(2), ref)
    with pytest.raises(CheckFailed, match="dtype torch.float32, got torch.float64"):
        check_close(ref.double(), ref)
    with pytest.raises(CheckFailed, match="dtype torch.float32, got torch.int64: integer"):
        check_close(torch.ones(2, dtype=torch.long), ref)
    check_close(ref.double(), ref, check_dtype=False)


def test_check_close_compares_numbers_and_tuples():
    check_close(torch.tensor(2.0), 2.0)
    check_close((torch.ones(2), 3.0), (torch.ones(2), 3.0))
    with pytest.raises(CheckFailed, match=r"out\[1\] does not match"):
        check_close((torch.ones(2), torch.zeros(2)), (torch.ones(2), torch.ones(2)), name="out")


# --------------------------------------------------------------------------- check_shape


def test_check_shape_binds_names_consistently(capsys):
    assert check_shape(torch.zeros(2, 8, 16), ("B", 8, "D"), name="x") == {"B": 2, "D": 16}
    assert "✓ x has shape (2, 8, 16) (B=2, D=16)" in capsys.readouterr().out
    assert check_shape(torch.zeros(4, 4), ("T", "T")) == {"T": 4}
    assert check_shape(torch.zeros(3, 5), (None, "T"), T=5) == {"T": 5}


def test_check_shape_failures_say_which_dimension():
    with pytest.raises(
        CheckFailed, match=r"shape \(B, 8, D\), got \(2, 7, 16\): dimension 1 should be 8, got 7"
    ):
        check_shape(torch.zeros(2, 7, 16), ("B", 8, "D"), name="x")
    with pytest.raises(
        CheckFailed, match=r"dimension 1 is T, which is 4 \(set by an earlier dimension\), but here it is 5"
    ):
        check_shape(torch.zeros(4, 5), ("T", "T"))
    with pytest.raises(CheckFailed, match=r"dimension 0 is B, which is 3 \(given\), but here it is 2"):
        check_shape(torch.zeros(2, 5), ("B", "T"), B=3)
    with pytest.raises(CheckFailed, match=r"\(3 dimensions\), got \(2, 5\) \(2 dimensions\)"):
        check_shape(torch.zeros(2, 5), ("B", "T", "C"))
    with pytest.raises(CheckFailed, match="got a list"):
        check_shape([1, 2], ("T",))


# --------------------------------------------------------------------------- check_gradient

CORRECT_FUNCTIONS = {
    "softmax": (stable_softmax, [(3, 5)]),
    "tanh-matmul": (lambda x, w: torch.tanh(x @ w).pow(2).mean(0), [(4, 3), (3, 2)]),
    "layer_norm": (lambda x: torch.nn.functional.layer_norm(x, (6,)), [(2, 6)]),
}


@pytest.mark.parametrize("fn, shapes", CORRECT_FUNCTIONS.values(), ids=CORRECT_FUNCTIONS.keys())
def test_check_gradient_agrees_with_gradcheck_on_correct_functions(fn, shapes, capsys):
    inputs = [torch.randn(shape) for shape in shapes]
    as_float64 = tuple(x.double().requires_grad_() for x in inputs)
    assert torch.autograd.gradcheck(fn, as_float64)
    check_gradient(fn, inputs, name="f")
    assert "✓ the gradient of f matches finite differences" in capsys.readouterr().out


@pytest.mark.parametrize("function", [SquareWithWrongBackward, SoftmaxSlightlyWrongBackward])
def test_check_gradient_catches_a_wrong_backward_as_gradcheck_does(function):
    x = torch.randn(3, 4, dtype=torch.float64)
    assert not torch.autograd.gradcheck(function.apply, (x.clone().requires_grad_(),), raise_exception=False)
    with pytest.raises(
        CheckFailed, match=r"gradient of bad with respect to input 0 \(shape \(3, 4\)\) does not match"
    ):
        check_gradient(function.apply, (x,), name="bad")


def test_check_gradient_reports_the_factor_and_the_worst_entry():
    with pytest.raises(CheckFailed, match=r"autograd's gradient is the numerical one times 1\.5") as info:
        check_gradient(SquareWithWrongBackward.apply, torch.randn(5))
    assert "The largest difference is at index (" in str(info.value)


def test_check_gradient_explains_cut_graphs_and_float32():
    with pytest.raises(
        CheckFailed, match=r"not connected to its inputs in autograd: did you use \.detach\(\)"
    ):
        check_gradient(lambda x: x.detach() * 2, torch.randn(3))
    with pytest.raises(CheckFailed, match=r"returned torch.float32 for float64 inputs"):
        check_gradient(lambda x: x.float() * 2, torch.randn(3))
    with pytest.raises(CheckFailed, match=r"(?s)with respect to input 1 .*autograd gives zero gradient"):
        check_gradient(lambda x, y: x * 2 + y.detach(), (torch.randn(3), torch.randn(3)))


# --------------------------------------------------------------------------- check_function


def test_check_function_passes_a_correct_implementation(capsys):
    check_function(stable_softmax, torch.softmax, torch.randn(3, 7), 1, name="softmax")
    assert capsys.readouterr().out.startswith("✓ softmax matches the reference on 3 inputs")


def test_check_function_tries_new_inputs_of_the_same_kind():
    example = torch.rand(4) + 0.5
    memorised = torch.log(example)
    with pytest.raises(CheckFailed, match=r"log \(random input #1\) does not match"):
        check_function(lambda x: memorised, torch.log, example, name="log")
    # Drawn within the example's range, so a function defined only for positive inputs works.
    check_function(lambda x: torch.log(x), torch.log, example, trials=5, name="log")


def test_check_function_reports_an_unfinished_exercise():
    def softmax(x, dim):
        raise NotImplementedError("exercise: write your code here")

    with pytest.raises(CheckFailed) as info:
        check_function(softmax, torch.softmax, torch.randn(2, 3), -1)
    assert str(info.value) == (
        "softmax: this exercise is not done yet: replace the `raise NotImplementedError` with your code"
    )
    with pytest.raises(CheckFailed, match="not done yet"):
        check_gradient(softmax, (torch.randn(3), -1))


def test_check_function_turns_a_learner_error_into_a_message_with_its_type_and_text():
    def attention(q, k):
        return q @ k  # forgot the transpose

    with pytest.raises(
        CheckFailed, match=r"attention raised RuntimeError: mat1 and mat2 shapes cannot be multiplied"
    ) as info:
        check_function(attention, lambda q, k: q @ k.T, torch.randn(2, 3), torch.randn(4, 3))
    assert "line" in str(info.value) and "`return q @ k  # forgot the transpose`" in str(info.value)


def test_check_function_catches_changing_the_input_in_place():
    def normalise(x):
        x -= x.max()
        return x

    with pytest.raises(CheckFailed, match="changed its input 0 in place"):
        check_function(normalise, lambda x: x - x.max(), torch.randn(5))
