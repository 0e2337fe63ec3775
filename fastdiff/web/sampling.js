// The one way to sample, the mirror of fastdiff/diffusion/sampling.py (plain sampling: the exported
// graphs are not cascades): `makePlan` checks the settings once against the model, `sampleSteps` runs the
// plan as a stream of steps and `finalImages` drains it; the final images are the last step's x_t.
// A model here is a site.json model entry: the checkpoint's config fields, snake_case as in Python.

import { formatG } from "./format.js";
import { checkGuidance, guidedDenoiser } from "./guidance.js";
import { ImageRNG } from "./rng.js";
import { SAMPLERS, SAMPLER_NAMES, checkSampler } from "./samplers.js";

export const MAX_SEED = 2 ** 31 - 1; // seeds stay signed 32-bit integers, which every tool holds exactly
export const MAX_IMAGES = 16; // the most images of one interactive request: the app's and this page's grids

/** Check every setting against the model; throws an Error with a one-line message. Returns the plan
 * {sampler, numSteps, guidance, eta}. A step-distilled model's default step count is its own. */
export function makePlan(model, schedule, sampler = "ddim", numSteps = null, guidance = 2.0, eta = 0.0) {
  if (numSteps === null && model.distilled_steps) numSteps = model.distilled_steps;
  numSteps = checkSampler(sampler, numSteps, eta, schedule.numTimesteps);
  checkDistilledGrid(model, sampler, numSteps, eta);
  checkGuidance(guidance, model);
  return { sampler, numSteps, guidance, eta };
}

/** A step-distilled student learned one deterministic grid: DDIM with eta 0 at its step count. Throws
 * an Error with a one-line message for any other sampler, step count or eta. */
export function checkDistilledGrid(model, sampler, numSteps, eta) {
  const steps = model.distilled_steps;
  if (steps && (sampler !== "ddim" || numSteps !== steps || eta)) {
    const asked = `${SAMPLER_NAMES[sampler]} with ${numSteps} steps` + (eta ? ` and eta ${formatG(eta)}` : "");
    throw new Error(
      `this checkpoint was distilled for DDIM with ${steps} steps (eta 0), the only grid it was trained on; ` +
        `got ${asked}`,
    );
  }
}

/** Throw an Error with a one-line message unless the seeds seed .. seed + numImages - 1 are usable. */
export function checkSeed(seed, numImages) {
  if (!(0 <= seed && seed <= MAX_SEED - numImages)) {
    throw new Error(`seed must be between 0 and ${MAX_SEED - numImages} for ${numImages} images, got ${seed}`);
  }
}

/** The steps of one plain sampling run of len(seeds) images, image i from seeds[i], on an ONNX Runtime
 * session (Tensor: ort.Tensor). startNoise: x_T in place of the seeds' (noiseBetween's); the seeds still
 * draw every later noise. */
export async function* sampleSteps(session, Tensor, model, schedule, classLabels, seeds, plan, startNoise = null) {
  const rng = new ImageRNG(seeds);
  let x_T = rng.randn(model.image_channels * model.image_size * model.image_size);
  if (startNoise !== null) x_T = startNoise;
  const denoiser = guidedDenoiser(session, model, classLabels, plan.guidance, Tensor);
  yield* SAMPLERS[plan.sampler](denoiser, schedule, x_T, plan.numSteps, {
    eta: plan.eta,
    rng,
    prediction: model.prediction,
  });
}

/** Run steps to the end; the last step's x_t, (B * C * H * W) in [-1, 1]. */
export async function finalImages(steps) {
  let last = null;
  for await (const step of steps) last = step;
  return last.x_t;
}

/** Spherical interpolation per image (Shoemake 1985), a at fraction 0, b at 1, of numImages images
 * flattened in a and b: noise moved along the arc keeps the norm of a Gaussian sample. float64 inside,
 * a new Float32Array out. */
export function slerp(a, b, fraction, numImages) {
  const count = a.length / numImages, out = new Float32Array(a.length);
  for (let image = 0; image < numImages; image++) {
    const start = image * count;
    let dot = 0, normA = 0, normB = 0;
    for (let i = start; i < start + count; i++) {
      dot += a[i] * b[i];
      normA += a[i] * a[i];
      normB += b[i] * b[i];
    }
    const theta = Math.acos(Math.min(Math.max(dot / (Math.sqrt(normA) * Math.sqrt(normB)), -1), 1));
    const sin = Math.sin(theta);
    const parallel = sin < 1e-6; // (nearly) the same direction: the line is the arc
    const weightA = parallel ? 1 - fraction : Math.sin((1 - fraction) * theta) / sin;
    const weightB = parallel ? fraction : Math.sin(fraction * theta) / sin;
    for (let i = start; i < start + count; i++) out[i] = weightA * a[i] + weightB * b[i];
  }
  return out;
}

/** Starting noise (count values per image) on the arc from the seeds' noise (fraction 0) to the other
 * seeds' (1), image i between seeds[i] and otherSeeds[i]. */
export function noiseBetween(seeds, otherSeeds, fraction, count) {
  return slerp(new ImageRNG(seeds).randn(count), new ImageRNG(otherSeeds).randn(count), fraction, seeds.length);
}
