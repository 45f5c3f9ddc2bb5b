"""The two lower-order-final conventions of the multistep DPM-Solver, each step by step against its reference.

- ``dpm-solver``: LuChengTHU/dpm-solver (``DPM_Solver.sample``, method multistep, ``denoise_to_zero=True``), the
  reference the PDM work follows. It is not installed: its per-step values are pinned below (computed with its
  commit 52bc3fb), and when a checkout is at $DPM_SOLVER_REFERENCE (default /tmp/dpm-solver, holding
  dpm_solver_pytorch.py) the run-time test recomputes them and compares every configuration live.
- ``diffusers``: diffusers' DPMSolverMultistepScheduler (DPM-Solver++), installed, compared directly (colorization's
  convention).

Step by step means the x each solver hands the network at every grid point, and the order of every update.
"""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler

from sarexp.diffusion.gaussian import gaussian_diffusion
from sarexp.diffusion.img2img import img2img
from sarexp.diffusion.samplers import DPMSolverSampler
from sarexp.errors import ConfigError

REFERENCE = Path(os.environ.get("DPM_SOLVER_REFERENCE", "/tmp/dpm-solver")) / "dpm_solver_pytorch.py"
PROCESS = gaussian_diffusion(steps=1000, noise_schedule="linear")  # no step is dropped by dpm-solver's λ clipping
ALPHA_BAR = torch.as_tensor(PROCESS.alphas_cumprod)
X_T = torch.tensor([[-1.5], [0.2], [1.3]], dtype=torch.float64)


def eps_model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The exact ε of data ~ N(0.3, 0.2²) plus a smooth nonlinear, t-dependent term (so higher orders matter)."""
    a = ALPHA_BAR[t.long()].to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
    exact = (1 - a).sqrt() * (x - a.sqrt() * 0.3) / (a * 0.04 + 1 - a)
    return exact + 0.05 * torch.tanh(x) * torch.cos(t.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1))) / 150.0)


class Recorder:
    """A model function that records the x (and index) it is called with."""

    def __init__(self, model):
        self.model, self.seen = model, []

    def __call__(self, x, t):
        self.seen.append((int(torch.as_tensor(t).reshape(-1)[0]), x.clone()))
        return self.model(x, t)

    def trajectory(self) -> torch.Tensor:
        return torch.stack([x for _, x in self.seen])


def sarexp_run(points: int, order: int, algorithm: str, rule: str, spacing: str = "logsnr"):
    sampler = DPMSolverSampler(steps=points, order=order, algorithm=algorithm, spacing=spacing,
                               lower_order_final=rule, clip_denoised=False)
    recorder = Recorder(eps_model)
    x0 = sampler.sample(PROCESS, recorder, X_T.clone())
    return sampler, recorder, x0


# ---- the order of every update, as each reference's rule gives it --------------------------------------------------

@pytest.mark.parametrize(("rule", "order", "points", "skip", "expected"), [
    # dpm-solver: `for step in range(order, steps + 1): step_order = min(order, steps + 1 - step)` if steps < 10
    ("dpm-solver", 3, 6, 0, [1, 2, 3, 2, 1]),
    ("dpm-solver", 2, 3, 0, [1, 1]),
    ("dpm-solver", 3, 10, 0, [1, 2, 3, 3, 3, 3, 3, 2, 1]),
    ("dpm-solver", 3, 11, 0, [1, 2] + [3] * 8),  # 10 updates: not lowered
    # diffusers: the last step (x̂_0, σ = 0) first order, the one before ≤ 2, when len(timesteps) < 15
    ("diffusers", 3, 6, 0, [1, 2, 3, 3, 2]),
    ("diffusers", 2, 3, 0, [1, 2]),
    ("diffusers", 3, 14, 0, [1, 2] + [3] * 10 + [2]),
    ("diffusers", 3, 15, 0, [1, 2] + [3] * 12),
    ("diffusers", 3, 10, 10, [1, 2] + [3] * 7),  # img2img: 10 of 20 grid points run, the grid counts
    ("none", 3, 6, 0, [1, 2, 3, 3, 3]),
])
def test_update_orders_follow_each_reference_rule(rule, order, points, skip, expected):
    sampler = DPMSolverSampler(steps=points + skip, order=order, lower_order_final=rule)
    sampler.skip_steps = skip
    assert sampler.update_orders(points) == expected


def test_an_unknown_convention_is_a_config_error():
    with pytest.raises(ConfigError, match="lower_order_final must be one of dpm-solver, diffusers, none"):
        DPMSolverSampler(lower_order_final="true")


# ---- dpm-solver: pinned per-step values, and the live reference when present ---------------------------------------

# x handed to the network at each grid point (the last is where x̂_0 is predicted), for x_T = X_T; from
# LuChengTHU/dpm-solver 52bc3fb on the same grid (logsnr spacing of this process), float64.
PINNED = {  # (algorithm, order, grid points): [x_T element][grid point]; 6 and 10 points lower, 11 do not
    ('dpmsolver++', 3, 6): [
        [-1.5, -1.2393821335308, -1.7586827082516, 0.88235847276158, 0.58926065639181, 0.5621159732032],
        [0.2, 0.1569687071611, 0.37173708587886, 0.10243185415564, 0.2085350165735, 0.2168615722704],
        [1.3, 1.0739284881824, 1.7210929828211, -0.36779915392437, -0.0058766310998712, 0.022512398658844],
    ],
    ('dpmsolver', 2, 10): [
        [-1.5, -1.4145897307452, -1.4013692834457, -1.3539254622114, -1.2501175960456, -0.67033911355906, -0.13778978234561, 0.007137464717862, 0.021659885517397, 0.025725643191183],
        [0.2, 0.18589031476907, 0.19759003278634, 0.22429245694724, 0.31294822401345, 0.3712835296618, 0.34540427864327, 0.33450946257821, 0.33301574508261, 0.33234194173145],
        [1.3, 1.2259111587839, 1.2350586092712, 1.250536611585, 1.3194751583369, 1.0352180337225, 0.65918569184932, 0.54594666412607, 0.53427478704826, 0.53056354776782],
    ],
    ('dpmsolver++', 3, 11): [
        [-1.5, -1.4278922186202, -1.4045605291812, -1.3681620966903, -1.2557718433131, -0.87744628799592, -0.29576304063494, -0.034467938621056, 0.010204538595299, 0.006416994720811, 0.010079931816924],
        [0.2, 0.1880873963244, 0.19396122507221, 0.21029169739862, 0.25707064933939, 0.32518470216773, 0.33638597201304, 0.32862060706486, 0.32969554210123, 0.33148705378201, 0.33120906660006],
        [1.3, 1.2374503440269, 1.231613725216, 1.2379896047237, 1.2398941489338, 1.1010168800484, 0.75147917891312, 0.56805290338841, 0.53851347805853, 0.54321225146228, 0.54025241582528],
    ],
}


def test_sarexp_reproduces_the_pinned_dpm_solver_steps():
    for (algorithm, order, points), expected in PINNED.items():
        _, recorder, _ = sarexp_run(points, order, algorithm, "dpm-solver")
        got = recorder.trajectory()[:, :, 0].T
        np.testing.assert_allclose(got.numpy(), np.array(expected), rtol=0, atol=1e-12,
                                   err_msg=f"{algorithm} order {order}, {points} points")


def reference_module():
    if not REFERENCE.is_file():
        pytest.skip(f"no LuChengTHU/dpm-solver checkout at {REFERENCE.parent} (set DPM_SOLVER_REFERENCE)")
    spec = importlib.util.spec_from_file_location("dpm_solver_reference", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_run(module, indices: list[int], order: int, algorithm: str, lower_order_final: bool):
    """dpm-solver's multistep sampler over our grid `indices` (descending): len − 1 updates, then x̂_0 at the last
    point (denoise_to_zero). Discrete step i is its continuous time (i + 1)/N, where its λ(t) interpolation is exact."""
    schedule = module.NoiseScheduleVP("discrete", betas=torch.as_tensor(PROCESS.betas), dtype=torch.float64)
    total = schedule.total_N
    assert total == PROCESS.num_timesteps
    recorder = Recorder(eps_model)
    solver = module.DPM_Solver(lambda x, t: recorder(x, torch.round(t * total - 1)), schedule,
                               algorithm_type=algorithm)
    times = schedule.t_array[0, indices]  # its knots (i + 1)/N, as it rounds them
    solver.get_time_steps = lambda **_: times
    orders = []
    update = solver.multistep_dpm_solver_update

    def recording_update(x, model_prev_list, t_prev_list, t, order, **kwargs):
        orders.append(order)
        return update(x, model_prev_list, t_prev_list, t, order, **kwargs)

    solver.multistep_dpm_solver_update = recording_update
    x0 = solver.sample(X_T.clone(), steps=len(indices) - 1, t_start=float(times[0]), t_end=float(times[-1]),
                       order=order, method="multistep", lower_order_final=lower_order_final, denoise_to_zero=True)
    return recorder, orders, x0


@pytest.mark.parametrize("algorithm", ["dpmsolver", "dpmsolver++"])
def test_dpm_solver_convention_matches_the_reference_step_by_step(algorithm):
    module = reference_module()
    for order in (1, 2, 3):
        for points in (4, 6, 10, 11, 21):
            if points - 1 < order:
                continue  # the reference asserts steps >= order
            for rule, lower in (("dpm-solver", True), ("none", False)):
                sampler, ours, x0 = sarexp_run(points, order, algorithm, rule)
                indices = [index for index, _ in ours.seen]
                theirs, orders, expected = reference_run(module, indices, order, algorithm, lower)
                assert [index for index, _ in theirs.seen] == indices
                assert sampler.update_orders(points) == orders, (order, points, rule)
                torch.testing.assert_close(ours.trajectory(), theirs.trajectory(), rtol=0, atol=1e-12)
                torch.testing.assert_close(x0, expected, rtol=0, atol=1e-12)
                if (algorithm, order, points) in PINNED and rule == "dpm-solver":
                    np.testing.assert_allclose(theirs.trajectory()[:, :, 0].T.numpy(),
                                               np.array(PINNED[(algorithm, order, points)]), rtol=0, atol=1e-12)


# ---- diffusers: compared directly ------------------------------------------------------------------------------------

def diffusers_run(steps: int, order: int, algorithm: str, lower_order_final: bool, skip: int = 0, x=None):
    scheduler = DPMSolverMultistepScheduler(num_train_timesteps=1000, trained_betas=PROCESS.betas.tolist(),
                                            algorithm_type=algorithm, solver_order=order,
                                            lower_order_final=lower_order_final, timestep_spacing="trailing")
    scheduler.set_timesteps(steps)
    orders = []
    for name, method_order in (("dpm_solver_first_order_update", 1), ("multistep_dpm_solver_second_order_update", 2),
                               ("multistep_dpm_solver_third_order_update", 3)):
        method = getattr(scheduler, name)
        setattr(scheduler, name, lambda *a, _m=method, _o=method_order, **k: (orders.append(_o), _m(*a, **k))[1])
    recorder = Recorder(eps_model)
    timesteps = scheduler.timesteps[skip:]
    scheduler.set_begin_index(skip)
    for t in timesteps:
        x = scheduler.step(recorder(x, torch.full((x.shape[0],), int(t))), t, x).prev_sample
    return recorder, orders, x


def test_diffusers_convention_matches_the_scheduler_step_by_step():
    """DPM-Solver++ (diffusers' noise-prediction "dpmsolver" cannot end at σ = 0, where sarexp returns x̂_0)."""
    algorithm, x_t = "dpmsolver++", X_T.to(torch.float32)
    for order, steps in ((2, 8), (3, 8), (3, 14), (3, 15), (2, 20)):
        for rule, lower in (("diffusers", True), ("none", False)):
            theirs, orders, expected = diffusers_run(steps, order, algorithm, lower, x=x_t.clone())
            sampler = DPMSolverSampler(steps=steps, order=order, algorithm=algorithm, spacing="trailing",
                                       lower_order_final=rule, clip_denoised=False)
            ours = Recorder(eps_model)
            x0 = sampler.sample(PROCESS, ours, x_t.clone())
            assert [i for i, _ in ours.seen] == [i for i, _ in theirs.seen]
            assert sampler.update_orders(steps) + [1] == orders, (order, steps, rule)  # + diffusers' step to σ = 0
            torch.testing.assert_close(ours.trajectory(), theirs.trajectory(), rtol=0, atol=2e-6)
            torch.testing.assert_close(x0, expected, rtol=0, atol=2e-6)


def test_diffusers_convention_counts_the_whole_grid_in_img2img():
    """img2img over 10 of 20 grid points: diffusers keeps full orders (len(timesteps) = 20 ≥ 15)."""
    init = X_T.to(torch.float32)
    noise = torch.tensor([[0.4], [-0.7], [1.1]])
    sampler = DPMSolverSampler(steps=20, order=3, spacing="trailing", lower_order_final="diffusers",
                               clip_denoised=False)
    ours = Recorder(eps_model)
    x0 = img2img(sampler, PROCESS, ours, init, 0.5, noise)
    start = ours.seen[0][0]
    theirs, orders, expected = diffusers_run(20, 3, "dpmsolver++", True, skip=10,
                                             x=PROCESS.q_sample(init, torch.full((3,), start), noise))
    assert orders == [1, 2] + [3] * 7 + [1]
    torch.testing.assert_close(ours.trajectory(), theirs.trajectory(), rtol=0, atol=2e-6)
    torch.testing.assert_close(x0, expected, rtol=0, atol=2e-6)
