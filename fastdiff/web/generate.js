// The page's input checks, the mirror of fastdiff/app/generate.py: the form's text checked once into a
// request for the worker, with the app's one-line messages word for word.

import { formatG, parsePythonFloat, pythonRepr } from "./format.js";
import { MAX_GUIDANCE } from "./guidance.js";
import { SAMPLER_NAMES } from "./samplers.js";
import { MAX_IMAGES, checkSeed, makePlan } from "./sampling.js";

// The distilled student as a sampler choice: DDIM at the student's step count, guidance in one pass.
export const DISTILLED_SAMPLER = "Distilled (one pass per step)";
export const PAGE_SAMPLERS = ["ddim", "dpm++", "dpm++sde"]; // the sampler menu, before the distilled one
export const SAMPLER_LABELS = {
  ...Object.fromEntries(Object.entries(SAMPLER_NAMES).map(([key, name]) => [name, key])),
  [DISTILLED_SAMPLER]: "ddim",
}; // -> SAMPLERS keys

/** A form field's text (or a number) as an integer; an Error naming what was typed for empty,
 * non-numeric, infinite or fractional input. */
export function wholeNumber(value, name) {
  if (value === null || value === undefined || value === "") throw new Error(`${name} needs a whole number`);
  if (typeof value === "number" && Number.isInteger(value)) return value;
  const number = typeof value === "number" ? value : parsePythonFloat(value);
  if (number === null) throw new Error(`${name} must be a whole number, got ${pythonRepr(String(value))}`);
  if (!Number.isInteger(number)) throw new Error(`${name} must be a whole number, got ${value}`); // also NaN, inf
  return number;
}

/** Check every setting against the model (a site.json entry, with its NoiseSchedule); throws an Error
 * with a one-line message. Returns the worker's request {model, sampler, numSteps, guidance, eta, seeds,
 * classLabels}. classIndex: the class of every image. */
export function makeRequest(model, schedule, classIndex, samplerLabel, steps, guidance, seed, numImages) {
  if (!Object.hasOwn(SAMPLER_LABELS, samplerLabel)) {
    throw new Error(`unknown sampler '${samplerLabel}': use one of ${Object.keys(SAMPLER_LABELS).join(", ")}`);
  }
  numImages = wholeNumber(numImages, "number of images");
  if (!(1 <= numImages && numImages <= MAX_IMAGES)) {
    throw new Error(`number of images must be between 1 and ${MAX_IMAGES}, got ${numImages}`);
  }
  seed = wholeNumber(seed, "seed");
  checkSeed(seed, numImages);
  if (guidance === null || guidance === undefined || String(guidance).trim() === "") {
    throw new Error(`guidance weight must be a number between 0 and ${formatG(MAX_GUIDANCE)}, got none`);
  }
  const weight = typeof guidance === "number" ? guidance : parsePythonFloat(guidance);
  if (weight === null) {
    const typed = pythonRepr(guidance);
    throw new Error(`guidance weight must be a number between 0 and ${formatG(MAX_GUIDANCE)}, got ${typed}`);
  }
  const plan = makePlan(model, schedule, SAMPLER_LABELS[samplerLabel], wholeNumber(steps, "steps"), weight, 0.0);
  const seeds = Array.from({ length: numImages }, (_, i) => seed + i);
  const classLabels = model.num_classes ? Array(numImages).fill(classIndex) : null;
  return { model: model.name, ...plan, seeds, classLabels };
}
