"""gradsmith.optimizers (Keras 3 optimizers over the fused kernels) and gradsmith.optimizers.schedules.

Trajectories are checked against the float64 oracle tests/reference/optimizers.py (Keras 3 formulas, run
step by step here with the learning rate, t = iterations + 1 and the state carried by hand); schedules
against closed forms written in the test with math in float64.
"""
import json
import math
import warnings

import numpy as np
import pytest

import gradsmith
import reference as R
from gradsmith import ops
from gradsmith import optimizers as O
from gradsmith.optimizers import schedules as S

# Keras 3 defaults, written out independently of the implementation.
DEFAULTS = {
    O.SGD: dict(learning_rate=0.01, momentum=0.0, nesterov=False),
    O.Adam: dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False),
    O.AdamW: dict(learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False),
    O.RMSprop: dict(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False),
    O.Adagrad: dict(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7),
    O.Adamax: dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
    O.Lion: dict(learning_rate=0.001, beta_1=0.9, beta_2=0.99),
}
NAMES = {O.SGD: "SGD", O.Adam: "adam", O.AdamW: "adamw", O.RMSprop: "rmsprop", O.Adagrad: "adagrad",
         O.Adamax: "adamax", O.Lion: "lion"}

CASES = [
    (O.SGD, {}),
    (O.SGD, {"learning_rate": 0.1}),
    (O.SGD, {"learning_rate": 0.05, "momentum": 0.9}),
    (O.SGD, {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (O.SGD, {"learning_rate": 0.1, "clipvalue": 0.3}),
    (O.Adam, {}),
    (O.Adam, {"learning_rate": 0.01, "amsgrad": True, "beta_1": 0.8, "beta_2": 0.99, "clipnorm": 0.5}),
    (O.Adam, {"learning_rate": 0.01, "weight_decay": 0.1}),
    (O.AdamW, {}),
    (O.AdamW, {"learning_rate": 0.01, "weight_decay": 0.1, "global_clipnorm": 1.0}),
    (O.RMSprop, {}),
    (O.RMSprop, {"learning_rate": 0.01, "momentum": 0.9}),
    (O.RMSprop, {"learning_rate": 0.01, "momentum": 0.5, "centered": True, "rho": 0.8, "clipvalue": 0.3}),
    (O.Adagrad, {}),
    (O.Adagrad, {"learning_rate": 0.1, "initial_accumulator_value": 0.5, "epsilon": 1e-3, "weight_decay": 0.05}),
    (O.Adamax, {}),
    (O.Adamax, {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "clipnorm": 0.5, "weight_decay": 0.05}),
    (O.Lion, {}),
    (O.Lion, {"learning_rate": 0.01, "beta_1": 0.5, "global_clipnorm": 1.0}),
]
SHAPES = [(3, 4), (4,), (2, 1, 3)]


def case_id(case):
    cls, hyper = case
    return cls.__name__ + "".join(f"-{k}={v}" for k, v in hyper.items())


def f32(x):
    return float(np.float32(x))


def model_buffers(rng, shapes=SHAPES):
    """A model's flat parameter and gradient buffers and their per-variable views."""
    sizes = [int(np.prod(s)) for s in shapes]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    params = rng.standard_normal(offsets[-1]).astype(np.float32)
    grads = np.zeros(offsets[-1], dtype=np.float32)
    pviews = [params[offsets[i]:offsets[i + 1]].reshape(s) for i, s in enumerate(shapes)]
    gviews = [grads[offsets[i]:offsets[i + 1]].reshape(s) for i, s in enumerate(shapes)]
    return params, pviews, grads, gviews


class Reference:
    """One Keras 3 optimizer in float64, stepped with the oracle's one-step functions."""

    def __init__(self, cls, hyper, params):
        h = {**DEFAULTS[cls], **hyper}
        self.cls = cls
        self.clip = {k: h.pop(k) for k in ("clipnorm", "clipvalue", "global_clipnorm") if k in h}
        self.weight_decay = h.pop("weight_decay", None)
        self.lr = h.pop("learning_rate")
        self.h = h
        self.w = [np.array(p, dtype=np.float64) for p in params]
        self.t = 0  # Keras iterations
        self.state = {}
        if cls is O.Adagrad:
            self.state["acc"] = [np.full_like(w, h["initial_accumulator_value"]) for w in self.w]

    def step(self, grads, lr=None):
        lr = f32(self.lr if lr is None else lr)  # Keras keeps the learning rate in float32
        g = [np.array(x, dtype=np.float64) for x in grads]
        h, s, kw = self.h, self.state, dict(self.clip, weight_decay=self.weight_decay)
        if self.cls is O.SGD:
            self.w, s["m"] = R.sgd(self.w, g, s.get("m"), learning_rate=lr, momentum=h["momentum"],
                                   nesterov=h["nesterov"], **kw)
        elif self.cls in (O.Adam, O.AdamW):
            self.w, s["m"], s["v"], s["vh"] = R.adam(
                self.w, g, s.get("m"), s.get("v"), step=self.t + 1, learning_rate=lr, beta_1=h["beta_1"],
                beta_2=h["beta_2"], epsilon=h["epsilon"], amsgrad=h["amsgrad"], v_hat=s.get("vh"), **kw)
        elif self.cls is O.RMSprop:
            self.w, s["v"], s["mb"], s["ag"] = R.rmsprop(
                self.w, g, s.get("v"), momentums=s.get("mb"), average_grads=s.get("ag"), learning_rate=lr,
                rho=h["rho"], momentum=h["momentum"], epsilon=h["epsilon"], centered=h["centered"], **kw)
        elif self.cls is O.Adamax:
            self.w, s["m"], s["u"] = R.adamax(self.w, g, s.get("m"), s.get("u"), step=self.t + 1, learning_rate=lr,
                                              beta_1=h["beta_1"], beta_2=h["beta_2"], epsilon=h["epsilon"], **kw)
        elif self.cls is O.Lion:
            self.w, s["m"] = R.lion(self.w, g, s.get("m"), learning_rate=lr, beta_1=h["beta_1"], beta_2=h["beta_2"],
                                    **kw)
        else:
            self.w, s["acc"] = R.adagrad(self.w, g, s["acc"], learning_rate=lr, epsilon=h["epsilon"], **kw)
        self.t += 1


def assert_close(actual, expected, what=""):
    for i, (a, e) in enumerate(zip(actual, expected)):
        np.testing.assert_allclose(np.asarray(a, dtype=np.float64), e, rtol=3e-5, atol=3e-6, err_msg=f"{what}[{i}]")


# --------------------------------------------------------------------------- defaults, names, config
@pytest.mark.parametrize("cls", list(DEFAULTS), ids=lambda c: c.__name__)
def test_keras_defaults_and_names(cls):
    opt = cls()
    config = opt.get_config()
    for key, value in DEFAULTS[cls].items():
        expected = f32(value) if key == "learning_rate" else value
        assert config[key] == expected, key
    assert opt.name == NAMES[cls]
    assert config["name"] == NAMES[cls]
    assert opt.iterations == 0
    assert opt.learning_rate == f32(DEFAULTS[cls]["learning_rate"])  # float32, as Keras's variable
    for key in ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "loss_scale_factor",
                "gradient_accumulation_steps", "ema_overwrite_frequency"):
        assert config[key] == (0.004 if (key == "weight_decay" and cls is O.AdamW) else None), key
    assert config["use_ema"] is False and config["ema_momentum"] == 0.99


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_config_round_trip(case):
    cls, hyper = case
    opt = cls(**hyper)
    config = opt.get_config()
    again = cls.from_config(config)
    assert type(again) is cls and again.get_config() == config
    blob = json.loads(json.dumps(O.serialize(opt)))
    assert blob["class_name"] == cls.__name__ and blob["module"] == "keras.optimizers"
    restored = O.get(blob)
    assert type(restored) is cls and restored.get_config() == config


def test_config_round_trip_with_schedule():
    schedule = S.CosineDecay(0.1, 100, alpha=0.05, warmup_target=0.2, warmup_steps=10)
    opt = O.Adam(learning_rate=schedule, clipnorm=1.0)
    config = json.loads(json.dumps(opt.get_config()))
    assert config["learning_rate"]["class_name"] == "CosineDecay"
    again = O.Adam.from_config(config)
    assert isinstance(again._learning_rate, S.CosineDecay)
    assert again._learning_rate.get_config() == schedule.get_config()
    assert again.get_config() == opt.get_config()


@pytest.mark.parametrize("name, cls", [("sgd", O.SGD), ("SGD", O.SGD), ("adam", O.Adam), ("Adam", O.Adam),
                                       ("adamw", O.AdamW), ("AdamW", O.AdamW), ("rmsprop", O.RMSprop),
                                       ("RMSprop", O.RMSprop), ("adagrad", O.Adagrad), ("ADAGRAD", O.Adagrad)])
def test_get_by_name(name, cls):
    opt = O.get(name)
    assert type(opt) is cls
    assert opt.get_config() == cls().get_config()


def test_get_other_identifiers():
    opt = O.SGD(learning_rate=0.3)
    assert O.get(opt) is opt
    assert O.get(None) is None
    from_dict = O.get({"class_name": "SGD", "config": {"learning_rate": 0.3, "momentum": 0.5}})
    assert type(from_dict) is O.SGD and from_dict.momentum == 0.5 and from_dict.learning_rate == f32(0.3)
    with pytest.raises(ValueError):
        O.get("not_an_optimizer")
    with pytest.raises(ValueError):
        O.get(42)
    assert gradsmith.optimizers is O


# --------------------------------------------------------------------------- argument checks (as Keras)
def test_argument_errors():
    with pytest.raises(ValueError, match="Only one of"):
        O.Adam(clipnorm=1.0, clipvalue=0.5)
    with pytest.raises(ValueError, match="Only one of"):
        O.SGD(clipnorm=1.0, global_clipnorm=1.0)
    with pytest.raises(ValueError, match="momentum"):
        O.SGD(momentum=1)  # Keras requires a float
    with pytest.raises(ValueError, match="momentum"):
        O.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="learning_rate"):
        O.Adam(learning_rate=1)  # Keras requires a float, a schedule or a callable
    with pytest.raises(ValueError, match="weight_decay"):
        O.AdamW(weight_decay=None)
    with pytest.raises(ValueError, match="not recognized"):
        O.Adam(betta_1=0.9)
    with pytest.raises(ValueError, match="lr"):
        O.Adam(lr=0.1)
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        O.SGD(gradient_accumulation_steps=1)
    with pytest.raises(ValueError, match="ema_momentum"):
        O.SGD(use_ema=True, ema_momentum=1.5)


def test_apply_errors(rng):
    _, pviews, _, gviews = model_buffers(rng)
    opt = O.SGD()
    with pytest.raises(ValueError, match="built"):
        opt.apply(gviews)
    opt.apply(gviews, pviews)
    with pytest.raises(ValueError, match="Unknown variable"):
        opt.apply([np.zeros((5,), np.float32)] + gviews[1:], [np.zeros((5,), np.float32)] + pviews[1:])
    with pytest.raises(ValueError, match="Unknown variable"):
        opt.apply(gviews[:1], [pviews[0].copy()])  # same shape, but not an array it was built with
    with pytest.raises(ValueError, match="No gradients"):
        opt.apply([None, None, None], pviews)


# --------------------------------------------------------------------------- trajectories
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_trajectory_matches_reference(case, rng):
    cls, hyper = case
    _, pviews, gflat, gviews = model_buffers(rng)
    ref = Reference(cls, hyper, pviews)
    opt = cls(**hyper)
    for step in range(6):
        gflat[...] = rng.standard_normal(gflat.shape).astype(np.float32) * (1.0 + step)
        ref.step(gviews)
        opt.apply(gviews, pviews)
        assert opt.iterations == step + 1
        assert_close(pviews, ref.w, f"{case_id(case)} step {step}")
    state = opt.get_state()
    if cls in (O.Adam, O.AdamW):
        assert_close([state["slot_momentum"]], [np.concatenate([m.ravel() for m in ref.state["m"]])], "m")
        assert_close([state["slot_velocity"]], [np.concatenate([v.ravel() for v in ref.state["v"]])], "v")
    if cls is O.Adagrad:
        assert_close([state["slot_accumulator"]], [np.concatenate([a.ravel() for a in ref.state["acc"]])], "acc")


def test_apply_gradients_pairs_and_plain_apply(rng):
    _, pviews, gflat, gviews = model_buffers(rng)
    ref = Reference(O.RMSprop, {"learning_rate": 0.01}, pviews)
    opt = O.RMSprop(learning_rate=0.01)
    for step in range(3):
        gflat[...] = rng.standard_normal(gflat.shape).astype(np.float32)
        ref.step(gviews)
        if step == 0:
            assert opt.apply_gradients(list(zip(gviews, pviews))) == 1
        else:
            opt.apply(gviews)  # built: the variables are remembered
    assert_close(pviews, ref.w)


def test_subset_of_built_variables_keeps_their_own_state(rng):
    # Keras: after freezing a layer, apply() gets fewer variables; each keeps its slots
    _, pviews, gflat, gviews = model_buffers(rng)
    both = Reference(O.Adam, {"learning_rate": 0.05}, [pviews[0], pviews[2]])
    alone = Reference(O.Adam, {"learning_rate": 0.05}, [pviews[1]])
    opt = O.Adam(learning_rate=0.05)
    gflat[...] = rng.standard_normal(gflat.shape).astype(np.float32)
    opt.apply(gviews, pviews)
    both.step([gviews[0], gviews[2]])
    alone.step([gviews[1]])
    frozen = pviews[1].copy()
    for _ in range(2):
        gflat[...] = rng.standard_normal(gflat.shape).astype(np.float32)
        opt.apply([gviews[0], gviews[2]], [pviews[0], pviews[2]])
        both.t = opt.iterations - 1  # the reference's t follows the optimizer's iterations
        both.step([gviews[0], gviews[2]])
    np.testing.assert_array_equal(pviews[1], frozen)
    assert_close([pviews[0], pviews[2]], both.w)
    assert_close([pviews[1]], alone.w)


def test_serialize_callable_learning_rate_as_its_value():
    opt = O.SGD(learning_rate=lambda: 0.25)
    blob = json.loads(json.dumps(O.serialize(opt)))
    assert blob["config"]["learning_rate"] == 0.25
    assert O.get(blob).learning_rate == 0.25


def test_none_gradients_are_skipped_with_a_warning(rng):
    _, pviews, gflat, gviews = model_buffers(rng)
    before = [p.copy() for p in pviews]
    ref = Reference(O.Adam, {"learning_rate": 0.1}, [pviews[0], pviews[2]])
    opt = O.Adam(learning_rate=0.1)
    gflat[...] = rng.standard_normal(gflat.shape).astype(np.float32)
    with pytest.warns(UserWarning, match="Gradients do not exist"):
        opt.apply([gviews[0], None, gviews[2]], pviews)
    ref.step([gviews[0], gviews[2]])
    np.testing.assert_array_equal(pviews[1], before[1])
    assert_close([pviews[0], pviews[2]], ref.w)


# --------------------------------------------------------------------------- kernels and state layout
KERNEL_OF = {O.SGD: "sgd_step", O.Adam: "adam_step", O.AdamW: "adamw_step", O.RMSprop: "rmsprop_step",
             O.Adagrad: "adagrad_step", O.Adamax: "adamax_step", O.Lion: "lion_step"}


@pytest.mark.parametrize("case", [c for c in CASES if not {"clipnorm", "clipvalue", "global_clipnorm"} & set(c[1])],
                         ids=case_id)
def test_one_fused_kernel_call_per_apply(case, rng, monkeypatch):
    cls, hyper = case
    name = KERNEL_OF[cls]
    real = getattr(ops, name)
    calls = []

    def counting(params, grads, *args, **kwargs):
        calls.append((params, kwargs))
        return real(params, grads, *args, **kwargs)

    monkeypatch.setattr(ops, name, counting)
    _, pviews, gflat, gviews = model_buffers(rng)
    opt = cls(**hyper, clipnorm=0.7)
    for step in range(3):
        gflat[...] = rng.standard_normal(gflat.shape).astype(np.float32)
        opt.apply(gviews, pviews)
        assert len(calls) == step + 1
    params, kwargs = calls[-1]
    assert len(params) == len(SHAPES) and all(p is v for p, v in zip(params, pviews))
    assert kwargs["clipnorm"] == 0.7
    if cls in (O.Adam, O.AdamW):
        assert kwargs["step"] == 3  # iterations + 1


@pytest.mark.parametrize("cls, kinds", [(lambda: O.SGD(momentum=0.9), ["momentum"]),
                                        (O.SGD, []),
                                        (O.Adam, ["momentum", "velocity"]),
                                        (lambda: O.Adam(amsgrad=True), ["momentum", "velocity", "velocity_hat"]),
                                        (lambda: O.RMSprop(momentum=0.5, centered=True),
                                         ["velocity", "momentum", "average_gradient"]),
                                        (O.Adagrad, ["accumulator"]), (O.Adamax, ["momentum", "norm"]),
                                        (O.Lion, ["momentum"])],
                         ids=["sgd-momentum", "sgd", "adam", "amsgrad", "rmsprop-all", "adagrad", "adamax", "lion"])
def test_one_flat_buffer_per_slot_kind(cls, kinds, rng):
    _, pviews, _, _ = model_buffers(rng)
    opt = cls()
    opt.build(pviews)
    total = sum(p.size for p in pviews)
    assert sorted(opt._slots) == sorted(kinds)
    for kind, (flat, views) in opt._slots.items():
        assert flat.dtype == np.float32 and flat.shape == (total,) and flat.flags.c_contiguous
        assert [v.shape for v in views] == [p.shape for p in pviews]
        for v in views:
            assert v.base is flat and v.flags.c_contiguous
    state = opt.get_state()
    assert sorted(k for k in state if k.startswith("slot_")) == sorted("slot_" + k for k in kinds)


def test_adagrad_accumulators_start_at_initial_value(rng):
    _, pviews, _, _ = model_buffers(rng)
    opt = O.Adagrad(initial_accumulator_value=0.25)
    opt.build(pviews)
    np.testing.assert_array_equal(opt.get_state()["slot_accumulator"], np.float32(0.25))


def test_state_round_trip_continues_identically(rng):
    params, pviews, gflat, gviews = model_buffers(rng)
    opt = O.Adam(learning_rate=0.01, amsgrad=True)
    for _ in range(3):
        gflat[...] = rng.standard_normal(gflat.shape).astype(np.float32)
        opt.apply(gviews, pviews)
    state = opt.get_state()
    assert int(state["iterations"]) == 3
    twin_params = params.copy()
    sizes = np.cumsum([0] + [int(np.prod(s)) for s in SHAPES])
    twin_views = [twin_params[sizes[i]:sizes[i + 1]].reshape(s) for i, s in enumerate(SHAPES)]
    twin = O.Adam(learning_rate=0.01, amsgrad=True)
    twin.set_state(state)  # before build: kept until build
    twin.build(twin_views)
    assert twin.iterations == 3
    for _ in range(2):
        gflat[...] = rng.standard_normal(gflat.shape).astype(np.float32)
        opt.apply(gviews, pviews)
        twin.apply(gviews, twin_views)
    np.testing.assert_array_equal(twin_params, params)
    with pytest.raises(ValueError):
        twin.set_state({"slot_momentum": np.zeros(3, np.float32)})


# --------------------------------------------------------------------------- learning rates and schedules
def test_learning_rate_is_settable_and_used(rng):
    _, pviews, gflat, gviews = model_buffers(rng)
    opt = O.SGD(learning_rate=0.1)
    ref = Reference(O.SGD, {}, pviews)
    gflat[...] = 1.0
    opt.apply(gviews, pviews)
    ref.step(gviews, lr=0.1)
    opt.learning_rate = 0.5  # what ReduceLROnPlateau does
    assert opt.learning_rate == f32(0.5) and isinstance(opt.learning_rate, float)
    assert opt.learning_rate.numpy() == np.float32(0.5)
    opt.apply(gviews, pviews)
    ref.step(gviews, lr=0.5)
    assert_close(pviews, ref.w)
    assert opt.get_config()["learning_rate"] == f32(0.5)
    with pytest.raises(TypeError):
        opt.learning_rate = "fast"


def test_schedule_is_evaluated_at_iterations_before_the_increment(rng):
    _, pviews, gflat, gviews = model_buffers(rng)
    schedule = S.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    opt = O.SGD(learning_rate=schedule, momentum=0.9)
    ref = Reference(O.SGD, {"momentum": 0.9}, pviews)
    for t in range(5):
        assert opt.learning_rate == pytest.approx(0.1 * 0.5 ** (t / 2), rel=1e-6)
        gflat[...] = rng.standard_normal(gflat.shape).astype(np.float32)
        ref.step(gviews, lr=0.1 * 0.5 ** (t / 2))  # Keras: schedule(iterations), then iterations += 1
        opt.apply(gviews, pviews)
        assert_close(pviews, ref.w, f"step {t}")
    with pytest.raises(TypeError, match="not settable"):
        opt.learning_rate = 0.01
    assert opt.get_state().get("learning_rate") is None


def test_adam_with_schedule_uses_step_iterations_plus_one(rng):
    _, pviews, gflat, gviews = model_buffers(rng)
    schedule = S.PiecewiseConstantDecay([1, 3], [0.1, 0.05, 0.01])
    opt = O.Adam(learning_rate=schedule)
    ref = Reference(O.Adam, {}, pviews)
    for t in range(5):
        gflat[...] = rng.standard_normal(gflat.shape).astype(np.float32)
        ref.step(gviews, lr=[0.1, 0.1, 0.05, 0.05, 0.01][t])
        opt.apply(gviews, pviews)
    assert_close(pviews, ref.w)


def test_callable_learning_rate(rng):
    _, pviews, gflat, gviews = model_buffers(rng)
    box = {"lr": 0.2}
    opt = O.SGD(learning_rate=lambda: box["lr"])
    ref = Reference(O.SGD, {}, pviews)
    gflat[...] = rng.standard_normal(gflat.shape).astype(np.float32)
    opt.apply(gviews, pviews)
    ref.step(gviews, lr=0.2)
    box["lr"] = 0.05
    assert opt.learning_rate == pytest.approx(0.05)
    opt.apply(gviews, pviews)
    ref.step(gviews, lr=0.05)
    assert_close(pviews, ref.w)


# --------------------------------------------------------------------------- Keras's other options
def test_ema_average_overwrite_and_finalize(rng):
    _, pviews, gflat, gviews = model_buffers(rng)
    opt = O.SGD(learning_rate=0.1, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=3)
    w = [p.astype(np.float64) for p in pviews]
    avg = None
    for t in range(4):
        gflat[...] = rng.standard_normal(gflat.shape).astype(np.float32)
        w = [wi - f32(0.1) * g.astype(np.float64) for wi, g in zip(w, gviews)]
        # Keras: momentum = 0 on the first step, then ema_momentum; avg = m avg + (1 - m) w
        m = 0.0 if t == 0 else 0.9
        avg = [wi.copy() for wi in w] if avg is None else [m * a + (1 - m) * wi for a, wi in zip(avg, w)]
        if (t + 1) % 3 == 0:  # overwrite the variables every ema_overwrite_frequency steps
            w = [a.copy() for a in avg]
        opt.apply(gviews, pviews)
        assert_close(pviews, w, f"w step {t}")
        assert_close(opt._slots["average"][1], avg, f"avg step {t}")
    opt.finalize_variable_values(pviews)
    assert_close(pviews, avg)


def test_gradient_accumulation(rng):
    _, pviews, gflat, gviews = model_buffers(rng)
    opt = O.SGD(learning_rate=0.1, gradient_accumulation_steps=2)
    w = [p.astype(np.float64) for p in pviews]
    pending = None
    for t in range(4):
        gflat[...] = rng.standard_normal(gflat.shape).astype(np.float32)
        g = [x.astype(np.float64) for x in gviews]
        if t % 2 == 0:
            pending = g
        else:  # Keras: every 2nd step, w -= lr * mean of the accumulated gradients
            w = [wi - f32(0.1) * (a + b) / 2 for wi, a, b in zip(w, pending, g)]
        opt.apply(gviews, pviews)
        assert opt.iterations == (t + 1) // 2
        assert_close(pviews, w, f"step {t}")


def test_loss_scale_factor(rng):
    _, pviews, gflat, gviews = model_buffers(rng)
    opt = O.SGD(learning_rate=0.1, loss_scale_factor=4.0)
    assert opt.scale_loss(2.0) == 8.0
    ref = Reference(O.SGD, {"learning_rate": 0.1}, pviews)
    gflat[...] = rng.standard_normal(gflat.shape).astype(np.float32)
    ref.step([g / 4.0 for g in gviews])
    opt.apply(gviews, pviews)
    assert_close(pviews, ref.w)


def test_exclude_from_weight_decay(rng):
    _, pviews, gflat, gviews = model_buffers(rng)
    opt = O.AdamW(learning_rate=0.01, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_list=[pviews[1]])
    decayed = Reference(O.AdamW, {"learning_rate": 0.01, "weight_decay": 0.5}, [pviews[0], pviews[2]])
    plain = Reference(O.Adam, {"learning_rate": 0.01}, [pviews[1]])
    for _ in range(3):
        gflat[...] = rng.standard_normal(gflat.shape).astype(np.float32)
        decayed.step([gviews[0], gviews[2]])
        plain.step([gviews[1]])
        opt.apply(gviews, pviews)
    assert_close([pviews[0], pviews[2]], decayed.w)
    assert_close([pviews[1]], plain.w)
    with pytest.raises(ValueError):
        opt.exclude_from_weight_decay(var_names=["bias"])  # only before build


def test_custom_optimizer_with_update_step(rng):
    class MySGD(O.Optimizer):
        def __init__(self, learning_rate=0.1, **kwargs):
            super().__init__(learning_rate=learning_rate, **kwargs)

        def update_step(self, gradient, variable, learning_rate):
            self.assign_sub(variable, gradient * np.float32(learning_rate))

    for clip in ({}, {"clipnorm": 0.5}, {"global_clipnorm": 0.8}, {"clipvalue": 0.2}, {"weight_decay": 0.3}):
        _, pviews, gflat, gviews = model_buffers(rng)
        ref = Reference(O.SGD, {"learning_rate": 0.1, **clip}, pviews)
        opt = MySGD(**clip)
        assert opt.name.startswith("my_sgd")
        for _ in range(3):
            gflat[...] = rng.standard_normal(gflat.shape).astype(np.float32)
            ref.step(gviews)
            opt.apply(gviews, pviews)
        assert_close(pviews, ref.w, str(clip))


# --------------------------------------------------------------------------- schedules
def test_exponential_decay():
    s = S.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    for step in (0, 1, 5, 10, 25, 1000):
        assert s(step) == pytest.approx(0.1 * 0.5 ** (step / 10), rel=1e-6)
    st = S.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    for step in (0, 9, 10, 19, 25):
        assert st(step) == pytest.approx(0.1 * 0.5 ** (step // 10), rel=1e-6)
    assert s(0) == f32(0.1)  # computed in float32, as Keras
    assert s(np.int64(5)) == s(5)


def test_piecewise_constant_decay():
    s = S.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    expected = {0: 1.0, 10: 1.0, 11: 0.5, 20: 0.5, 21: 0.1, 500: 0.1}
    for step, value in expected.items():
        assert s(step) == f32(value)
    with pytest.raises(ValueError, match="length of boundaries"):
        S.PiecewiseConstantDecay([10, 20], [1.0, 0.5])


def test_polynomial_decay():
    s = S.PolynomialDecay(0.1, decay_steps=10, end_learning_rate=0.01, power=0.5)
    for step in (0, 3, 5, 10, 15):
        p = min(step, 10) / 10
        assert s(step) == pytest.approx((0.1 - 0.01) * (1 - p) ** 0.5 + 0.01, rel=1e-6)
    c = S.PolynomialDecay(0.1, decay_steps=10, end_learning_rate=0.01, power=2.0, cycle=True)
    for step in (0, 5, 10, 15, 25):
        decay_steps = 10 * (1 if step == 0 else math.ceil(step / 10))
        assert c(step) == pytest.approx((0.1 - 0.01) * (1 - step / decay_steps) ** 2 + 0.01, rel=1e-6)
    assert S.PolynomialDecay(0.1, 10)(10) == pytest.approx(0.0001, rel=1e-5)  # end_learning_rate=0.0001


def test_inverse_time_decay():
    s = S.InverseTimeDecay(0.1, decay_steps=1.0, decay_rate=0.5)
    for step in (0, 1, 2, 7):
        assert s(step) == pytest.approx(0.1 / (1 + 0.5 * step), rel=1e-6)
    st = S.InverseTimeDecay(0.1, decay_steps=4, decay_rate=0.5, staircase=True)
    for step in (0, 3, 4, 9):
        assert st(step) == pytest.approx(0.1 / (1 + 0.5 * (step // 4)), rel=1e-6)


def test_cosine_decay():
    s = S.CosineDecay(0.1, decay_steps=100, alpha=0.1)
    for step in (0, 25, 50, 100, 150):
        frac = min(step, 100) / 100
        assert s(step) == pytest.approx(0.1 * ((1 - 0.1) * 0.5 * (1 + math.cos(math.pi * frac)) + 0.1),
                                        rel=1e-6, abs=1e-9)
    w = S.CosineDecay(0.0, decay_steps=100, warmup_target=0.2, warmup_steps=10)
    for step in (0, 5, 9):
        assert w(step) == pytest.approx(0.2 * step / 10, rel=1e-6, abs=1e-9)  # linear warmup from 0
    for step in (10, 60, 110, 200):
        frac = (min(step, 110) - 10) / 100
        assert w(step) == pytest.approx(0.2 * 0.5 * (1 + math.cos(math.pi * frac)), rel=1e-6, abs=1e-8)
    w2 = S.CosineDecay(0.05, decay_steps=10, warmup_target=0.1, warmup_steps=4)
    assert w2(2) == pytest.approx((0.1 - 0.05) * 2 / 4 + 0.05, rel=1e-6)


def test_cosine_decay_restarts():
    s = S.CosineDecayRestarts(1.0, first_decay_steps=10, t_mul=2.0, m_mul=0.5, alpha=0.0)
    # periods of 10, 20, 40 steps; peak m_mul**i at the i-th restart
    # step 50: third period (30..70), fraction 0.5, peak 0.5**2
    expected = {0: 1.0, 5: 0.5, 10: 0.5, 20: 0.25, 30: 0.25, 50: 0.5 * 0.25 * (1 + math.cos(math.pi * 0.5))}
    for step, value in expected.items():
        assert s(step) == pytest.approx(value, rel=1e-5, abs=1e-7), step
    flat = S.CosineDecayRestarts(0.1, first_decay_steps=10, t_mul=1.0, m_mul=1.0, alpha=0.2)
    for step in (0, 5, 10, 15, 27):
        frac = (step % 10) / 10
        assert flat(step) == pytest.approx(0.1 * (0.8 * 0.5 * (1 + math.cos(math.pi * frac)) + 0.2), rel=1e-5)


SCHEDULES = [
    S.ExponentialDecay(0.1, 100, 0.96, staircase=True, name="exp"),
    S.PiecewiseConstantDecay([100, 200], [0.1, 0.01, 0.001]),
    S.PolynomialDecay(0.1, 1000, end_learning_rate=0.01, power=0.5, cycle=True),
    S.InverseTimeDecay(0.1, 10, 0.5),
    S.CosineDecay(0.1, 1000, alpha=0.1, warmup_target=0.5, warmup_steps=100),
    S.CosineDecayRestarts(0.1, 100, t_mul=1.5, m_mul=0.9, alpha=0.01),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_schedule_config_round_trip(schedule):
    config = schedule.get_config()
    again = type(schedule).from_config(config)
    assert again.get_config() == config
    blob = json.loads(json.dumps(S.serialize(schedule)))
    assert blob["class_name"] == type(schedule).__name__ and blob["module"] == "keras.optimizers.schedules"
    restored = S.deserialize(blob)
    for step in (0, 1, 150, 1200):
        assert restored(step) == schedule(step)


def test_schedule_errors_and_defaults():
    with pytest.raises(ValueError, match="decay_steps"):
        S.ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="decay_steps"):
        S.CosineDecay(0.1, -1)
    with pytest.raises(ValueError, match="first_decay_steps"):
        S.CosineDecayRestarts(0.1, 0)
    assert S.CosineDecay(0.1, 10).get_config() == {
        "initial_learning_rate": 0.1, "decay_steps": 10, "alpha": 0.0, "name": "CosineDecay", "warmup_target": None,
        "warmup_steps": 0}
    assert S.CosineDecayRestarts(0.1, 10).get_config()["name"] == "SGDRDecay"
    assert S.PiecewiseConstantDecay([1], [0.1, 0.2]).name == "PiecewiseConstant"
    with pytest.raises(NotImplementedError):
        S.LearningRateSchedule()(0)


def test_custom_schedule_subclass(rng):
    class Halving(S.LearningRateSchedule):
        def __call__(self, step):
            return 0.4 / (step + 1)

    _, pviews, gflat, gviews = model_buffers(rng)
    opt = O.SGD(learning_rate=Halving())
    ref = Reference(O.SGD, {}, pviews)
    for t in range(3):
        gflat[...] = rng.standard_normal(gflat.shape).astype(np.float32)
        ref.step(gviews, lr=0.4 / (t + 1))
        opt.apply(gviews, pviews)
    assert_close(pviews, ref.w)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert opt.learning_rate == pytest.approx(0.1)


@pytest.mark.parametrize("name, per_weight", [("adam", 2), ("adamax", 2), ("rmsprop", 1), ("sgd", 0)])
def test_optimizer_variables_are_in_keras_order(name, per_weight):
    """Keras's optimizer.variables: iterations, learning_rate, then the slots as Keras creates them; Adam's
    and Adamax's two slots come interleaved per weight (one add_optimizer_variables call)."""
    import gradsmith as keras

    model = keras.Sequential([keras.layers.Dense(4, input_shape=(3,)), keras.layers.Dense(1)])
    model.compile(optimizer=name, loss="mse")
    model.fit(np.ones((4, 3), np.float32), np.ones((4, 1), np.float32), verbose=0)
    shapes = [tuple(np.shape(v)) for v in model.optimizer.variables]
    weight_shapes = [(3, 4), (4,), (4, 1), (1,)]
    assert shapes == [(), ()] + [s for s in weight_shapes for _ in range(per_weight)]
    if per_weight == 2:  # momentum then the second moment of each weight: distinct arrays
        slots = model.optimizer.variables[2:]
        assert all(a is not b for a, b in zip(slots[::2], slots[1::2]))
