"""Fused optimizer steps (ops.*_step) against the float64 reference optimizers (Keras 3 formulas).

Tolerance. One float32 step errs, per element, by a few EPS32 relative to the sizes of the terms it
adds (when they cancel, relative to the result is meaningless). _step_magnitudes lists those sizes
for every output (parameters and state), from the float64 reference; a step is accepted within
STEP_ULPS * EPS32 * (|ref| + magnitude). Over several steps the errors add up (each step's inputs
already carry the previous errors, and w, m, v pass them on with factor <= 1): a trajectory is
accepted within 2 * STEP_ULPS * EPS32 * (|ref| + the magnitudes summed over the steps).
"""
import numpy as np
import pytest

import reference as R
from gradsmith import ops
from helpers import EPS32, TINY32, all_threads, assert_bitwise_equal, assert_within, f32, f64, num_threads

STEP_ULPS = 3  # measured <= 2.0 over every case, ISA and clip mode

# (optimizer, hyper-parameters): every update rule and option.
OPTIMIZERS = [
    ("sgd", {"learning_rate": 0.1}),
    ("sgd", {"learning_rate": 0.05, "momentum": 0.9}),
    ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    ("adam", {"learning_rate": 0.01}),
    ("adam", {"learning_rate": 0.01, "amsgrad": True, "beta_1": 0.8, "beta_2": 0.99}),
    ("adamw", {"learning_rate": 0.01}),
    ("adamw", {"learning_rate": 0.01, "weight_decay": 0.05, "amsgrad": True}),
    ("rmsprop", {"learning_rate": 0.01}),
    ("rmsprop", {"learning_rate": 0.01, "momentum": 0.9}),
    ("rmsprop", {"learning_rate": 0.01, "centered": True}),
    ("rmsprop", {"learning_rate": 0.01, "momentum": 0.5, "centered": True, "rho": 0.8}),
    ("adagrad", {"learning_rate": 0.1}),
    ("adagrad", {"learning_rate": 0.1, "epsilon": 1e-3}),
    ("adamax", {"learning_rate": 0.01}),
    ("adamax", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3}),
    ("lion", {"learning_rate": 0.01}),
    ("lion", {"learning_rate": 0.01, "beta_1": 0.5, "beta_2": 0.9}),
]
CLIPS = [{}, {"clipvalue": 0.5}, {"clipnorm": 1.0}, {"global_clipnorm": 1.5}, {"weight_decay": 0.1}]


def opt_id(case):
    name, hyper = case
    return name + "".join(f"-{k}={v}" for k, v in hyper.items() if k != "learning_rate")


def clip_id(clip):
    return "-".join(f"{k}={v}" for k, v in clip.items()) or "no_clip"


def state_names(name, hyper):
    """The state buffers this configuration uses (names as ops' keyword arguments)."""
    if name == "sgd":
        return ["momentums"] if hyper.get("momentum", 0.0) else []
    if name in ("adam", "adamw"):
        return ["m", "v"] + (["v_hat"] if hyper.get("amsgrad") else [])
    if name == "rmsprop":
        return (["velocities"] + (["momentums"] if hyper.get("momentum", 0.0) else [])
                + (["average_grads"] if hyper.get("centered") else []))
    if name == "adamax":
        return ["m", "u"]
    if name == "lion":
        return ["m"]
    return ["accumulators"]


def initial_state(name, hyper, shapes, rng):
    """float32 state lists: momenta random, second moments positive (adagrad from Keras's 0.1)."""
    state = {}
    for s in state_names(name, hyper):
        if s in ("v", "v_hat", "velocities", "u"):
            state[s] = [f32(rng.uniform(0.0, 0.5, shape) ** 2) for shape in shapes]
        elif s == "accumulators":
            state[s] = [np.full(shape, 0.1, np.float32) for shape in shapes]
        else:
            state[s] = [f32(0.1 * rng.standard_normal(shape)) for shape in shapes]
    if "average_grads" in state:  # EMAs of g and g^2 satisfy ag^2 <= v (Jensen): keep den = v - ag^2 + eps > 0
        state["average_grads"] = [f32(np.sqrt(v) * rng.uniform(-0.9, 0.9, v.shape)) for v in state["velocities"]]
    if "v_hat" in state:  # v_hat >= v as it would be after earlier steps, sometimes equal
        state["v_hat"] = [np.where(rng.random(v.shape) < 0.5, v, v * 1.5).astype(np.float32) for v in state["v"]]
    return state


def kernel_step(name, params, grads, state, step, hyper, clip):
    """One ops step; params and state (lists, or single arrays) updated in place."""
    kw = dict(hyper, **clip)
    if name == "sgd":
        ops.sgd_step(params, grads, state.get("momentums"), **kw)
    elif name in ("adam", "adamw"):
        fn = ops.adam_step if name == "adam" else ops.adamw_step
        fn(params, grads, state["m"], state["v"], step=step, v_hat=state.get("v_hat"), **kw)
    elif name == "rmsprop":
        ops.rmsprop_step(params, grads, state["velocities"], momentums=state.get("momentums"),
                         average_grads=state.get("average_grads"), **kw)
    elif name == "adamax":
        ops.adamax_step(params, grads, state["m"], state["u"], step=step, **kw)
    elif name == "lion":
        ops.lion_step(params, grads, state["m"], **kw)
    else:
        ops.adagrad_step(params, grads, state["accumulators"], **kw)


def reference_step(name, params, grads, state, step, hyper, clip):
    """The float64 reference on float64 copies; returns (params, state) as lists of float64 arrays."""
    kw = dict(hyper, **clip)
    p = [f64(w) for w in params]
    g = [f64(x) for x in grads]
    s = {k: [f64(a) for a in v] for k, v in state.items()}
    if name == "sgd":
        w, m = R.sgd(p, g, s.get("momentums"), **kw)
        out = {"momentums": m} if "momentums" in s else {}
    elif name in ("adam", "adamw"):
        fn = R.adam if name == "adam" else R.adamw
        w, m, v, vh = fn(p, g, s["m"], s["v"], step=step, v_hat=s.get("v_hat"), **kw)
        out = {"m": m, "v": v, **({"v_hat": vh} if "v_hat" in s else {})}
    elif name == "rmsprop":
        w, v, mb, ag = R.rmsprop(p, g, s["velocities"], momentums=s.get("momentums"),
                                 average_grads=s.get("average_grads"), **kw)
        out = {"velocities": v, **({"momentums": mb} if "momentums" in s else {}),
               **({"average_grads": ag} if "average_grads" in s else {})}
    elif name == "adamax":
        w, m, u = R.adamax(p, g, s["m"], s["u"], step=step, **kw)
        out = {"m": m, "u": u}
    elif name == "lion":
        w, m = R.lion(p, g, s["m"], **kw)
        out = {"m": m}
    else:
        w, acc = R.adagrad(p, g, s["accumulators"], **kw)
        out = {"accumulators": acc}
    return w, out


def _step_magnitudes(name, params, grads, state, step, hyper, clip):
    """Per output array (params and each state), the size of the terms one step adds together,
    from float64 copies of the float32 inputs (see the module docstring)."""
    lr = hyper.get("learning_rate")
    wd = clip.get("weight_decay", hyper.get("weight_decay", 0.004 if name == "adamw" else None)) or 0.0
    g = R.clip_gradients([f64(x) for x in grads], clip.get("clipvalue"), clip.get("clipnorm"),
                         clip.get("global_clipnorm"))
    w = [f64(x) * (1.0 - wd * lr) for x in params]
    mags = {"params": [], **{k: [] for k in state}}
    for i, (wi, gi) in enumerate(zip(w, g)):
        s = {k: f64(v[i]) for k, v in state.items()}
        decay = np.abs(f64(params[i])) * (1.0 + wd * lr)  # w - w wd lr
        if name == "sgd":
            mom = hyper.get("momentum", 0.0)
            if mom:
                m_mag = np.abs(mom * s["momentums"]) + np.abs(lr * gi)
                mags["momentums"].append(m_mag)
                update = m_mag * (1.0 + mom) + np.abs(lr * gi) if hyper.get("nesterov") else m_mag
            else:
                update = np.abs(lr * gi)
        elif name in ("adam", "adamw"):
            b1, b2 = hyper.get("beta_1", 0.9), hyper.get("beta_2", 0.999)
            eps = hyper.get("epsilon", 1e-7)
            alpha = lr * np.sqrt(1 - b2**step) / (1 - b1**step)
            m_new = s["m"] + (gi - s["m"]) * (1 - b1)
            m_mag = np.abs(s["m"]) + (np.abs(gi) + np.abs(s["m"])) * (1 - b1)  # m + (g - m)(1 - b1)
            v_new = s["v"] + (gi * gi - s["v"]) * (1 - b2)
            v_mag = s["v"] + (gi * gi + s["v"]) * (1 - b2)  # v + (g^2 - v)(1 - b2)
            mags["m"].append(m_mag)
            mags["v"].append(v_mag)
            if "v_hat" in s:
                mags["v_hat"].append(v_mag)
                v_used = np.maximum(s["v_hat"], v_new)
            else:
                v_used = v_new
            den = np.sqrt(v_used) + eps
            # alpha m / den: m's absolute error (m_mag), and the relative errors of sqrt(v) and the divide
            update = alpha * (m_mag + np.abs(m_new) * (2.0 + v_mag / np.maximum(v_used, 1e-300))) / den
        elif name == "rmsprop":
            rho, mom, eps = hyper.get("rho", 0.9), hyper.get("momentum", 0.0), hyper.get("epsilon", 1e-7)
            v_new = rho * s["velocities"] + (1 - rho) * gi * gi
            mags["velocities"].append(v_new)
            den, den_mag = v_new + eps, v_new + eps
            if "average_grads" in s:
                ag_new = rho * s["average_grads"] + (1 - rho) * gi
                ag_mag = np.abs(rho * s["average_grads"]) + np.abs((1 - rho) * gi)
                mags["average_grads"].append(ag_mag)
                den = v_new - ag_new**2 + eps
                den_mag = v_new + 2 * np.abs(ag_new) * ag_mag + ag_new**2 + eps  # v - ag^2 cancels
            inc = lr * np.abs(gi) / np.sqrt(den)
            inc_mag = inc * (2.0 + den_mag / den)  # lr g / sqrt(den): den's relative error, halved, and 3 roundings
            if mom:
                mb_mag = np.abs(mom * s["momentums"]) + inc_mag
                mags["momentums"].append(mb_mag)
                update = mb_mag
            else:
                update = inc_mag
        elif name == "adamax":
            b1, b2 = hyper.get("beta_1", 0.9), hyper.get("beta_2", 0.999)
            eps = hyper.get("epsilon", 1e-7)
            alpha = lr / (1 - b1**step)
            m_new = s["m"] + (gi - s["m"]) * (1 - b1)
            m_mag = np.abs(s["m"]) + (np.abs(gi) + np.abs(s["m"])) * (1 - b1)
            u_new = np.maximum(b2 * s["u"], np.abs(gi))
            mags["m"].append(m_mag)
            mags["u"].append(u_new)
            update = alpha * (m_mag + 3.0 * np.abs(m_new)) / (u_new + eps)
        elif name == "lion":
            b1, b2 = hyper.get("beta_1", 0.9), hyper.get("beta_2", 0.99)
            mags["m"].append(np.abs(b2 * s["m"]) + np.abs((1 - b2) * gi))
            update = np.full_like(gi, lr)  # lr * sign(...): exact unless the sign's argument is within rounding of 0
        else:
            eps = hyper.get("epsilon", 1e-7)
            acc_new = s["accumulators"] + gi * gi
            mags["accumulators"].append(acc_new)
            update = 3.0 * lr * np.abs(gi) / np.sqrt(acc_new + eps)
        mags["params"].append(decay + update)
    return mags


def assert_step_close(name, kernel_params, kernel_state, ref_params, ref_state, mags, ulps, what=""):
    for i, (got, ref, mag) in enumerate(zip(kernel_params, ref_params, mags["params"])):
        assert_within(got, ref, ulps * EPS32 * (np.abs(ref) + mag) + TINY32, what=f"{what} params[{i}]")
    for key, refs in ref_state.items():
        for i, (got, ref, mag) in enumerate(zip(kernel_state[key], refs, mags[key])):
            assert_within(got, ref, ulps * EPS32 * (np.abs(ref) + mag) + TINY32, what=f"{what} {key}[{i}]")


def _problem(rng, shapes, name, hyper):
    params = [f32(rng.standard_normal(shape)) for shape in shapes]
    return params, initial_state(name, hyper, shapes, rng)


def _grads(rng, shapes):
    return [f32(rng.standard_normal(shape) * rng.choice([0.1, 1.0, 3.0])) for shape in shapes]


SHAPE_SETS = {
    "single": [(37,)],
    "list": [(5, 7), (1,), (130,), (3, 4, 5)],
}


@pytest.mark.parametrize("as_list", ["single", "list"])
@pytest.mark.parametrize("clip", CLIPS, ids=clip_id)
@pytest.mark.parametrize("case", OPTIMIZERS, ids=opt_id)
def test_each_step_matches_reference_in_place(isa, rng, case, clip, as_list):
    """Four steps; each compared with the reference applied to the kernel's own float32 inputs.
    Parameters and state are updated in place (the same objects); the gradients are not touched."""
    name, hyper = case
    shapes = SHAPE_SETS[as_list]
    params, state = _problem(rng, shapes, name, hyper)
    ids = [id(a) for a in params] + [id(a) for v in state.values() for a in v]
    for step in range(1, 5):
        grads = _grads(rng, shapes)
        grads_before = [g.copy() for g in grads]
        before_p = [w.copy() for w in params]
        before_s = {k: [a.copy() for a in v] for k, v in state.items()}
        ref_params, ref_state = reference_step(name, before_p, grads, before_s, step, hyper, clip)
        mags = _step_magnitudes(name, before_p, grads, before_s, step, hyper, clip)
        if as_list == "single":  # one array, not a list
            kernel_step(name, params[0], grads[0], {k: v[0] for k, v in state.items()}, step, hyper, clip)
        else:
            kernel_step(name, params, grads, state, step, hyper, clip)
        assert_step_close(name, params, state, ref_params, ref_state, mags, STEP_ULPS, what=f"step {step}")
        for g, g0 in zip(grads, grads_before):
            assert_bitwise_equal(g, g0, what="grads must not be modified")
    assert ids == [id(a) for a in params] + [id(a) for v in state.values() for a in v]


@pytest.mark.parametrize("clip", [{}, {"global_clipnorm": 2.0}], ids=clip_id)
@pytest.mark.parametrize("case", OPTIMIZERS, ids=opt_id)
def test_trajectory_matches_independent_reference(isa, rng, case, clip):
    """Eight steps of the kernel and, separately, eight float64 reference steps from the same start:
    the compounded float32 error stays within 2 * STEP_ULPS * EPS32 * (|ref| + summed step magnitudes)."""
    name, hyper = case
    shapes = SHAPE_SETS["list"]
    params, state = _problem(rng, shapes, name, hyper)
    ref_params, ref_state = [f64(w) for w in params], {k: [f64(a) for a in v] for k, v in state.items()}
    total = None
    for step in range(1, 9):
        grads = _grads(rng, shapes)
        mags = _step_magnitudes(name, ref_params, grads, ref_state, step, hyper, clip)
        total = mags if total is None else {k: [a + b for a, b in zip(total[k], mags[k])] for k in total}
        kernel_step(name, params, grads, state, step, hyper, clip)
        ref_params, ref_state = reference_step(name, ref_params, grads, ref_state, step, hyper, clip)
    assert_step_close(name, params, state, ref_params, ref_state, total, 2 * STEP_ULPS, what="after 8 steps")


@pytest.mark.parametrize("clip", [{}, {"clipnorm": 100.0}, {"global_clipnorm": 100.0}], ids=clip_id)
@pytest.mark.parametrize("case", OPTIMIZERS, ids=opt_id)
def test_bit_identical_for_any_thread_count(isa, rng, case, clip):
    """A 100k-element buffer (and a list around it): same bits with 1 and N threads."""
    name, hyper = case
    shapes = [(100_000,), (70_001,), (3,)]
    params0, state0 = _problem(rng, shapes, name, hyper)
    grads = _grads(rng, shapes)
    results = []
    for threads in (1, all_threads(), 3):
        params = [w.copy() for w in params0]
        state = {k: [a.copy() for a in v] for k, v in state0.items()}
        with num_threads(threads):
            for step in (1, 2):
                kernel_step(name, params, grads, state, step, hyper, clip)
        results.append((params, state))
    for params, state in results[1:]:
        for a, b in zip(params, results[0][0]):
            assert_bitwise_equal(a, b, what="params")
        for k in state:
            for a, b in zip(state[k], results[0][1][k]):
                assert_bitwise_equal(a, b, what=k)


@pytest.mark.parametrize("clip, expected", [
    ({"clipvalue": 1.0}, [[1.0 - 1.0, 1.0 + 0.5], [1.0 - 0.0, 1.0 - 1.0]]),   # clip(g, -1, 1)
    ({"clipnorm": 6.0}, [[1.0 - 3.0, 1.0 - 4.0], [1.0 - 0.0, 1.0 - 6.0]]),    # norms 5 (kept) and 12 -> 6
    ({"global_clipnorm": 6.5}, [[1.0 - 1.5, 1.0 - 2.0], [1.0 - 0.0, 1.0 - 6.0]]),  # global norm 13 -> 6.5
])
def test_clipping_by_hand(isa, clip, expected):
    params = [np.ones(2, np.float32), np.ones(2, np.float32)]
    grads = [np.array([3.0, 4.0], np.float32), np.array([0.0, 12.0], np.float32)]
    if "clipvalue" in clip:
        grads[0] = np.array([3.0, -0.5], np.float32)
    ops.sgd_step(params, grads, learning_rate=1.0, **clip)
    for got, want in zip(params, expected):
        assert_within(got, want, 2 * EPS32 * (np.abs(want) + 6.0))


@pytest.mark.parametrize("optimizer, hyper, state, expected", [
    ("adam", {"beta_2": 0.999}, "v", 0.001),       # v = 0 + (1 - 0)(1 - beta_2)
    ("adam", {"beta_1": 0.9}, "m", 0.1),           # m = 0 + (1 - 0)(1 - beta_1)
    ("rmsprop", {"rho": 0.99}, "velocities", 0.01),  # v = rho 0 + (1 - rho) 1
    ("rmsprop", {"rho": 0.9}, "velocities", 0.1),
])
def test_first_moment_update_uses_one_minus_beta_exactly(isa, optimizer, hyper, state, expected):
    """From zero state with g = 1 the new moment is exactly (1 - beta): the spec's 1 - beta_2 = 0.001,
    which float32 holds to 0.5 ulp. (1 - float32(0.999) in float32 would be 0.00099998713: 1.3e-5 off.)"""
    w, g = np.zeros(4, np.float32), np.ones(4, np.float32)
    buffers = {s: np.zeros(4, np.float32) for s in ("m", "v", "velocities")}
    if optimizer == "adam":
        ops.adam_step(w, g, buffers["m"], buffers["v"], step=1, **hyper)
    else:
        ops.rmsprop_step(w, g, buffers["velocities"], **hyper)
    assert_within(buffers[state], np.full(4, expected), 2 * EPS32 * expected, what=f"{optimizer} {state}")


def test_global_norm(isa, rng):
    arrays = [f32(rng.standard_normal(s)) for s in [(1000, 37), (5,), (0,), (70_001,)]]
    assert ops.global_norm(arrays) == pytest.approx(R.global_norm(arrays), rel=1e-12)
    assert ops.global_norm(arrays[0]) == pytest.approx(R.global_norm(arrays[0]), rel=1e-12)
    with num_threads(1):
        one = ops.global_norm(arrays)
    with num_threads(all_threads()):
        assert ops.global_norm(arrays) == one


# --- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, match", [
    (lambda: ops.sgd_step(np.ones(3), np.ones(3, np.float32)), TypeError, "float32"),
    (lambda: ops.adam_step([np.ones(3, np.float32), np.ones(2)], [np.ones(3), np.ones(2)],
                           [np.zeros(3, np.float32), np.zeros(2, np.float32)],
                           [np.zeros(3, np.float32), np.zeros(2, np.float32)], step=1), TypeError, "float32"),
    (lambda: ops.adam_step(np.ones(3, np.float32), np.ones(3), np.zeros(3), np.zeros(3, np.float32), step=1),
     TypeError, "float32"),
    (lambda: ops.sgd_step(np.ones(3, np.float32), np.ones(4)), ValueError, "shape"),
    (lambda: ops.sgd_step([np.ones(3, np.float32)], [np.ones(3), np.ones(3)]), ValueError, "expected 1"),
    (lambda: ops.adagrad_step(np.ones(3, np.float32), np.ones(3), np.zeros(4, np.float32)), ValueError, "shape"),
    (lambda: ops.sgd_step(np.ones(3, np.float32), np.ones(3), momentum=0.9), ValueError, "momentums"),
    (lambda: ops.adam_step(np.ones(3, np.float32), np.ones(3), None, np.zeros(3, np.float32), step=1),
     ValueError, "m"),
    (lambda: ops.adam_step(np.ones(3, np.float32), np.ones(3), np.zeros(3, np.float32), None, step=1),
     ValueError, "v"),
    (lambda: ops.adam_step(np.ones(3, np.float32), np.ones(3), np.zeros(3, np.float32), np.zeros(3, np.float32),
                           step=1, amsgrad=True), ValueError, "v_hat"),
    (lambda: ops.rmsprop_step(np.ones(3, np.float32), np.ones(3), None), ValueError, "velocities"),
    (lambda: ops.rmsprop_step(np.ones(3, np.float32), np.ones(3), np.zeros(3, np.float32), centered=True),
     ValueError, "average_grads"),
    (lambda: ops.rmsprop_step(np.ones(3, np.float32), np.ones(3), np.zeros(3, np.float32), momentum=0.5),
     ValueError, "momentums"),
    (lambda: ops.adagrad_step(np.ones(3, np.float32), np.ones(3), None), ValueError, "accumulators"),
    (lambda: ops.sgd_step(np.ones(3, np.float32), np.ones(3), clipnorm=1.0, clipvalue=1.0), ValueError, "only one"),
    (lambda: ops.sgd_step(np.ones(3, np.float32), np.ones(3), clipnorm=1.0, global_clipnorm=1.0), ValueError,
     "only one"),
    (lambda: ops.adam_step(np.ones(3, np.float32), np.ones(3), np.zeros(3, np.float32), np.zeros(3, np.float32),
                           step=1, clipvalue=1.0, global_clipnorm=2.0), ValueError, "only one"),
    (lambda: ops.adam_step(np.ones(3, np.float32), np.ones(3), np.zeros(3, np.float32), np.zeros(3, np.float32),
                           step=0), ValueError, "step"),
])
def test_errors(isa, call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_errors_leave_buffers_untouched(isa):
    """A rejected call (two clip options) must not have half-applied the step."""
    w, m = np.ones(3, np.float32), np.zeros(3, np.float32)
    with pytest.raises(ValueError):
        ops.sgd_step(w, np.ones(3), m, momentum=0.9, clipnorm=1.0, clipvalue=1.0)
    assert_bitwise_equal(w, np.ones(3, np.float32))
    assert_bitwise_equal(m, np.zeros(3, np.float32))


@pytest.mark.parametrize("case", ["grad_is_param", "params_overlap", "state_overlaps_param", "state_is_grad"])
def test_overlapping_in_place_buffers_are_refused(case):
    flat = np.zeros(20, np.float32)
    a, b, g = flat[:10], flat[10:], np.ones(10, np.float32)
    m = np.zeros(10, np.float32)
    args = {"grad_is_param": ([a], [a], [m]), "params_overlap": ([flat[:10], flat[5:15]], [g, g], [m, m.copy()]),
            "state_overlaps_param": ([a], [g], [flat[5:15]]), "state_is_grad": ([a], [g], [g])}[case]
    before = flat.copy()
    with pytest.raises(ValueError, match="overlap"):
        ops.sgd_step(args[0], args[1], args[2], momentum=0.9)
    np.testing.assert_array_equal(flat, before)


def test_disjoint_views_of_one_buffer_are_accepted():
    flat = np.zeros(20, np.float32)
    state = np.zeros(20, np.float32)
    ops.sgd_step([flat[:10], flat[10:]], [np.ones(10, np.float32)] * 2, [state[:10], state[10:]], momentum=0.9)
    np.testing.assert_allclose(flat, -0.01)
