// The DDPM forward process, the mirror of fastdiff/diffusion/schedule.py: betas, alpha_bar and the
// conversions between the network parameterizations eps, x0 and v = sqrt(alpha_bar) eps - sqrt(1 -
// alpha_bar) x0 (Salimans & Ho 2022, section 4 and appendix D). Timesteps are 0-based.
// Constants are computed in float64 and stored rounded to float32 (Python's float32 tensors); array
// arithmetic is float32: every product and sum goes through a Float32Array or Math.fround.

const f32 = Math.fround;

// alpha_bar at the last timestep of a zero-terminal-SNR schedule: keeps log-SNR finite, as diffusers does
export const TERMINAL_ALPHA_BAR = 2 ** -24;

/** torch.linspace(start, end, steps) in float64: from both ends towards the middle, as torch computes it. */
function linspace(start, end, steps) {
  const step = (end - start) / (steps - 1);
  const half = Math.floor(steps / 2);
  return Float64Array.from({ length: steps }, (_, i) => (i < half ? start + step * i : end - step * (steps - i - 1)));
}

function cumprod(values) {
  const out = new Float64Array(values.length);
  values.reduce((product, value, i) => (out[i] = product * value), 1);
  return out;
}

export function scheduleBetas(config) {
  const T = config.num_timesteps;
  if (config.schedule === "linear") return linspace(config.beta_start, config.beta_end, T);
  // Cosine schedule (Nichol & Dhariwal 2021, eq. 17), betas clipped at 0.999.
  const s = 0.008;
  const f = Float64Array.from({ length: T + 1 }, (_, i) => Math.cos((i / T + s) / (1 + s) * Math.PI / 2) ** 2);
  return Float64Array.from({ length: T }, (_, i) => Math.min(1 - (f[i + 1] / f[0]) / (f[i] / f[0]), 0.999));
}

export function makeBetas(config) {
  const betas = scheduleBetas(config);
  if (!config.zero_terminal_snr) return betas;
  // Lin et al. 2024, Algorithm 1: shift and scale sqrt(alpha_bar) to end at 0, keeping its first value
  const root = cumprod(betas.map((beta) => 1 - beta)).map(Math.sqrt);
  const first = root[0], last = root[root.length - 1];
  const alphaBar = root.map((r) => ((r - last) * first / (first - last)) ** 2);
  alphaBar[alphaBar.length - 1] = TERMINAL_ALPHA_BAR;
  return alphaBar.map((ab, i) => 1 - ab / (i ? alphaBar[i - 1] : 1));
}

export class NoiseSchedule {
  /** config: a site.json model's "diffusion" entry (num_timesteps, schedule, beta_start, beta_end,
   * zero_terminal_snr). betas and alphaBar: Float32Array (T,). */
  constructor(config) {
    this.config = config;
    this.numTimesteps = config.num_timesteps;
    const betas = makeBetas(config);
    this.betas = Float32Array.from(betas);
    this.alphaBar = Float32Array.from(cumprod(betas.map((beta) => 1 - beta)));
  }

  /** Signal-to-noise ratio alpha_bar / (1 - alpha_bar) at timestep t (float32, as snr() is). */
  snr(t) {
    return f32(this.alphaBar[t] / f32(1 - this.alphaBar[t]));
  }

  /** The eps and x0 (Float32Array like x_t, every image at timestep t) a network output implies,
   * whatever it predicts; with clipX0, x0 is clamped to [-1, 1] and eps recomputed to match. */
  epsAndX0(output, x_t, t, prediction, clipX0 = false) {
    const alphaBar = this.alphaBar[t];
    const alpha = f32(Math.sqrt(alphaBar)), sigma = f32(Math.sqrt(f32(1 - alphaBar)));
    const n = x_t.length;
    let eps = new Float32Array(n), x0 = new Float32Array(n);
    if (prediction === "eps") {
      eps = output; // x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar), Ho et al. eq. 4 inverted
      for (let i = 0; i < n; i++) x0[i] = f32(x_t[i] - f32(sigma * output[i])) / alpha;
    } else if (prediction === "x0") {
      x0 = output;
      for (let i = 0; i < n; i++) eps[i] = f32(x_t[i] - f32(alpha * output[i])) / sigma;
    } else if (prediction === "v") {
      // with alpha^2 + sigma^2 = 1: x0 = alpha x_t - sigma v, eps = sigma x_t + alpha v
      for (let i = 0; i < n; i++) {
        eps[i] = f32(sigma * x_t[i]) + f32(alpha * output[i]);
        x0[i] = f32(alpha * x_t[i]) - f32(sigma * output[i]);
      }
    } else {
      throw new Error(`unknown prediction '${prediction}'`);
    }
    if (clipX0) {
      if (x0 === output) x0 = Float32Array.from(output);
      if (eps === output) eps = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        x0[i] = Math.min(Math.max(x0[i], -1), 1);
        eps[i] = f32(x_t[i] - f32(alpha * x0[i])) / sigma; // predict_eps
      }
    }
    return { eps, x0 };
  }
}
