// A sampling run kept for replay, the mirror of fastdiff/diffusion/trajectory.py: for at most MAX_KEPT
// + 1 evenly spaced steps (the last always), every image's x_t after the step, the x0 and eps the model
// predicted there, as uint8 pictures, with the step's t and alpha_bar. The page scrubs through a finished
// run without running the model again.

import { formatG } from "./format.js";
import { toUint8 } from "./images.js";

export const MAX_KEPT = 64; // steps kept of a longer run
export const EPS_RANGE = 3.0; // predicted noise is shown from -3 (black) to 3 (white)

export class Trajectory {
  constructor(numImages, channels, size, maxKept = MAX_KEPT) {
    Object.assign(this, { numImages, channels, imageSize: size, maxKept, numSteps: 0, steps: [] });
  }

  /** Keep every ceil(numSteps / maxKept)-th step record (a worker "update" step) and the last. */
  record(step) {
    this.numSteps = step.numSteps;
    const every = Math.ceil(step.numSteps / this.maxKept);
    if (step.index % every !== 0 && step.index + 1 !== step.numSteps) return;
    const pictures = (x) => toUint8(x, this.numImages, this.channels, this.imageSize);
    const scaledEps = step.eps.map((value) => value / EPS_RANGE);
    this.steps.push({
      index: step.index,
      t: step.t,
      alphaBar: step.alphaBar,
      x_t: pictures(step.x_t),
      x0: pictures(step.x0),
      eps: pictures(scaledEps),
    });
  }
}

/** The caption of a kept step, as replay.py's step_caption writes it. */
export function stepCaption(trajectory, step) {
  const sigma = Math.sqrt(1 - step.alphaBar), snr = step.alphaBar / (1 - step.alphaBar);
  return (
    `step ${step.index + 1}/${trajectory.numSteps} · model evaluated at t = ${step.t}, ` +
    `sigma_t = ${sigma.toFixed(3)}, SNR = ${formatG(snr, 3)} · left: x_t after the step, middle: ` +
    "predicted x0, right: predicted eps (-3 black, +3 white)"
  );
}
