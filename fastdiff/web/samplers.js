// Reverse-process samplers, the mirror of fastdiff/diffusion/samplers.py, as async generators: each
// yields a step record {index, numSteps, t, x_t, x0, eps} after every model evaluation (the denoiser is
// an ONNX Runtime call, which returns a Promise), so the page can stream frames and Cancel between steps;
// the last step's x_t is the final image.
//
// A sampler takes a `denoiser(x_t, t) -> Promise<output>` (guidance already applied, see guidance.js),
// the noise schedule, the starting noise x_T and a step count. Images are Float32Array (B * C * H * W),
// image-major as Python's (B, C, H, W). As in Python, coefficients are float64 numbers computed once per
// step and the arrays are float32: `c * x` is Math.fround(Math.fround(c) * x[i]), as torch casts a Python
// float to the tensor's float32. Results match torch's CPU ones to about 1 ulp (torch's vectorized float32
// sqrt is not always correctly rounded; Math.exp, log and expm1 may differ from libm in a last bit).

import { reprFloat, roundHalfEven } from "./format.js";

const f32 = Math.fround;

export const DEFAULT_STEPS = { ddpm: null, ddim: 50, "dpm++": 20, "dpm++sde": 20 }; // null: all T steps

/** a * x + b * y in float32 for float64 coefficients a, b: a new Float32Array like x. */
function linear(a, x, b, y) {
  const a32 = f32(a), b32 = f32(b), out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32(a32 * x[i]) + f32(b32 * y[i]);
  return out;
}

/** numSteps evenly spaced timesteps from tStart (default T-1) down, "trailing" spacing (Lin et al.
 * 2024, table 2): the first step starts at pure noise and the last one jumps to the clean image. */
export function timestepGrid(numTimesteps, numSteps, tStart = null) {
  const span = tStart === null ? numTimesteps : tStart + 1;
  if (!(1 <= span && span <= numTimesteps)) {
    throw new Error(`t_start must be between 0 and ${numTimesteps - 1}, got ${tStart}`);
  }
  if (!(1 <= numSteps && numSteps <= span)) throw new Error(`steps must be between 1 and ${span}, got ${numSteps}`);
  return Array.from({ length: numSteps }, (_, i) => roundHalfEven(span - (i * span) / numSteps) - 1);
}

/** The eps and x0 the model's output implies (schedule.epsAndX0), x0 clipped with clipX0. */
async function predict(denoiser, schedule, x, t, clipX0, prediction) {
  return schedule.epsAndX0(await denoiser(x, t), x, t, prediction, clipX0);
}

/** Ancestral sampling (Ho et al. 2020, Algorithm 2) with sigma_t^2 = beta_t; with fewer than T steps
 * the schedule is respaced (Nichol & Dhariwal 2021, section 4): beta'_i = 1 - alpha_bar_i / alpha_bar_prev. */
export async function* ddpm(
  denoiser, schedule, x_T, numSteps = null, { rng, clipX0 = true, tStart = null, prediction = "eps" } = {},
) {
  const alphaBar = schedule.alphaBar;
  const first = tStart === null ? schedule.numTimesteps - 1 : tStart;
  const timesteps = timestepGrid(schedule.numTimesteps, numSteps || first + 1, tStart); // default: every step
  const perImage = x_T.length / rng.seeds.length;
  let x = x_T;
  for (const [i, t] of timesteps.entries()) {
    const { eps, x0 } = await predict(denoiser, schedule, x, t, clipX0, prediction);
    if (i + 1 === timesteps.length) {
      x = x0;
    } else {
      const abT = alphaBar[t], abPrev = alphaBar[timesteps[i + 1]];
      const beta = 1 - abT / abPrev;
      // Posterior mean of q(x_{t-1} | x_t, x_0), Ho et al. eq. 7.
      const mean = linear(
        (Math.sqrt(abPrev) * beta) / (1 - abT), x0, (Math.sqrt(1 - beta) * (1 - abPrev)) / (1 - abT), x,
      );
      x = linear(1, mean, Math.sqrt(beta), rng.randn(perImage));
    }
    yield { index: i, numSteps: timesteps.length, t, x_t: x, x0, eps };
  }
}

/** DDIM (Song et al. 2021, eq. 12); eta = 0 is deterministic, eta = 1 is ancestral-like. */
export async function* ddim(
  denoiser, schedule, x_T, numSteps, { eta = 0, rng = null, clipX0 = true, tStart = null, prediction = "eps" } = {},
) {
  if (!(0 <= eta && eta <= 1)) throw new Error(`eta must be between 0 and 1, got ${reprFloat(eta)}`);
  if (eta > 0 && rng === null) throw new Error("DDIM with eta > 0 needs an rng for its noise");
  const alphaBar = schedule.alphaBar;
  const timesteps = timestepGrid(schedule.numTimesteps, numSteps, tStart);
  let x = x_T;
  for (const [i, t] of timesteps.entries()) {
    const { eps, x0 } = await predict(denoiser, schedule, x, t, clipX0, prediction);
    const abT = alphaBar[t];
    const abPrev = i + 1 < timesteps.length ? alphaBar[timesteps[i + 1]] : 1.0;
    // eq. 16: sigma = eta * sqrt((1 - ab_prev) / (1 - ab_t)) * sqrt(1 - ab_t / ab_prev)
    const sigma = eta * Math.sqrt(((1 - abPrev) / (1 - abT)) * (1 - abT / abPrev));
    x = linear(Math.sqrt(abPrev), x0, Math.sqrt(Math.max(1 - abPrev - sigma ** 2, 0.0)), eps);
    if (sigma > 0) x = linear(1, x, sigma, rng.randn(x.length / rng.seeds.length));
    yield { index: i, numSteps: timesteps.length, t, x_t: x, x0, eps };
  }
}

/** DPM-Solver++(2M) in data prediction, in lambda = log(alpha / sigma), h = lambda_s - lambda_t (Lu et
 * al. 2022): the first `noisySteps` steps solve the SDE, the others the probability-flow ODE.
 *   ODE (Algorithm 2): x_s = (sigma_s / sigma_t) x_t + alpha_s (1 - e^-h) D
 *   SDE (section 4):   x_s = (sigma_s / sigma_t) e^-h x_t + alpha_s (1 - e^-2h) D + sigma_s sqrt(1 - e^-2h) z
 * D = x0 + (x0 - x0_prev) / (2 r), r = h_prev / h (D = x0 on the first step). The last step goes to
 * sigma = 0 with first order, which returns the final x0 prediction. */
export async function* dpmSolverPp2m(
  denoiser, schedule, x_T, numSteps, { noisySteps, rng = null, clipX0 = true, tStart = null, prediction = "eps" },
) {
  if (noisySteps && rng === null) throw new Error("a stochastic DPM-Solver++ step needs an rng for its noise");
  const timesteps = timestepGrid(schedule.numTimesteps, numSteps, tStart);
  const alpha = Array.from(schedule.alphaBar, (ab) => Math.sqrt(ab));
  const sigma = Array.from(schedule.alphaBar, (ab) => Math.sqrt(1 - ab));
  const lambda = alpha.map((a, i) => Math.log(a / sigma[i]));
  let x = x_T, x0Prev = null, hPrev = null;
  for (const [i, t] of timesteps.entries()) {
    const { eps, x0 } = await predict(denoiser, schedule, x, t, clipX0, prediction);
    if (i + 1 === timesteps.length) {
      x = x0;
    } else {
      const s = timesteps[i + 1];
      const h = lambda[s] - lambda[t];
      let d = x0;
      if (x0Prev !== null) {
        const r = f32(h / (2 * hPrev)); // D = x0 + (h / (2 h_prev)) (x0 - x0_prev)
        d = x0.map((value, j) => value + f32(r * f32(value - x0Prev[j])));
      }
      if (i < noisySteps) {
        x = linear((sigma[s] / sigma[t]) * Math.exp(-h), x, -(alpha[s] * Math.expm1(-2 * h)), d);
        x = linear(1, x, sigma[s] * Math.sqrt(-Math.expm1(-2 * h)), rng.randn(x.length / rng.seeds.length));
      } else {
        x = linear(sigma[s] / sigma[t], x, -(alpha[s] * Math.expm1(-h)), d);
      }
      [x0Prev, hPrev] = [x0, h];
    }
    yield { index: i, numSteps: timesteps.length, t, x_t: x, x0, eps };
  }
}

/** DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2), deterministic: the probability-flow ODE. */
export function dpmSolverPp(
  denoiser, schedule, x_T, numSteps, { clipX0 = true, tStart = null, prediction = "eps" } = {},
) {
  return dpmSolverPp2m(denoiser, schedule, x_T, numSteps, { noisySteps: 0, clipX0, tStart, prediction });
}

/** SDE-DPM-Solver++(2M) (Lu et al. 2022, section 4): every step solves the reverse SDE, drawing fresh
 * noise from the rng, so the image does not follow x_T alone. */
export function dpmSolverPpSde(
  denoiser, schedule, x_T, numSteps, { rng, clipX0 = true, tStart = null, prediction = "eps" } = {},
) {
  return dpmSolverPp2m(denoiser, schedule, x_T, numSteps, { noisySteps: numSteps, rng, clipX0, tStart, prediction });
}

export const SAMPLERS = { ddpm, ddim, "dpm++": dpmSolverPp, "dpm++sde": dpmSolverPpSde };
export const SAMPLER_NAMES = { ddpm: "DDPM", ddim: "DDIM", "dpm++": "DPM-Solver++", "dpm++sde": "DPM-Solver++ SDE" };

/** Throw an Error with a one-line message for bad settings; return the step count to use (the
 * sampler's default for null). */
export function checkSampler(sampler, numSteps, eta, numTimesteps) {
  if (!Object.hasOwn(SAMPLERS, sampler)) {
    throw new Error(`unknown sampler '${sampler}': use one of ${Object.keys(SAMPLERS).join(", ")}`);
  }
  if (numSteps === null || numSteps === undefined) numSteps = DEFAULT_STEPS[sampler] || numTimesteps;
  if (!(1 <= numSteps && numSteps <= numTimesteps)) {
    throw new Error(`steps must be between 1 and ${numTimesteps}, got ${numSteps}`);
  }
  if (!Number.isFinite(eta) || !(0 <= eta && eta <= 1)) {
    throw new Error(`eta must be between 0 and 1, got ${reprFloat(eta)}`);
  }
  return numSteps;
}
