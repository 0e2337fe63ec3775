// Classifier-free guidance (Ho & Salimans 2022), the mirror of fastdiff/diffusion/guidance.py: a thin
// wrapper that turns an ONNX Runtime session into the `denoiser(x_t, t) -> Promise<output>` the samplers
// expect:
//
//     output = (1 + w) * output(x_t, t, c) - w * output(x_t, t, null)
//
// Both branches run in one session call of the doubled batch; w = 0 skips the unconditional branch. A
// guidance-distilled network (model.guidance_embedding, Meng et al. 2023) takes w as an input and gives
// the guided prediction in one call of the plain batch. The combination is affine with weights summing to
// 1, so it holds for a v- or x0-predicting network's output as it does for eps.
//
// The ONNX graph (fastdiff/export/onnx.py): inputs "x_t" float32 [B, C, H, W], "t" int64 [B],
// "class_label" int64 [B], "guidance" float32 [B] (distilled students only); output "output" like x_t.

import { formatG } from "./format.js";

const f32 = Math.fround;

export const MAX_GUIDANCE = 10.0; // far above the paper's w = 2; larger weights push eps out of range

/** Throw an Error with a one-line message unless 0 <= w <= MAX_GUIDANCE, and for a guidance-distilled
 * model (a site.json model entry), unless w is in the range it was trained for. */
export function checkGuidance(guidance, model = null) {
  if (!Number.isFinite(guidance) || !(0 <= guidance && guidance <= MAX_GUIDANCE)) {
    throw new Error(`guidance weight must be between 0 and ${formatG(MAX_GUIDANCE)}, got ${formatG(guidance)}`);
  }
  if (model && model.guidance_embedding) {
    const [low, high] = model.guidance_range;
    if (!(low <= guidance && guidance <= high)) {
      throw new Error(
        `this checkpoint was distilled for guidance ${formatG(low)} to ${formatG(high)}, got ${formatG(guidance)}`,
      );
    }
  }
}

/** (1 + w) * cond - w * uncond in float32: a new Float32Array. */
export function combine(epsCond, epsUncond, w) {
  const weightCond = f32(1 + w), weightUncond = f32(w), out = new Float32Array(epsCond.length);
  for (let i = 0; i < out.length; i++) out[i] = f32(weightCond * epsCond[i]) - f32(weightUncond * epsUncond[i]);
  return out;
}

/** The denoiser of a sampling run on `session` (an ort.InferenceSession, or anything with its run()),
 * for the site.json model entry `model`, class labels (B numbers, or null for unconditional samples) and
 * guidance weight w. Tensor: ort.Tensor (the runtime is loaded by the worker, so it is passed in). */
export function guidedDenoiser(session, model, classLabels, w, Tensor) {
  const channels = model.image_channels, size = model.image_size;
  if (!classLabels || !model.num_classes) [classLabels, w] = [null, 0]; // unconditional: the null class

  async function run(x_t, t, labels, guidance) {
    const batch = labels.length;
    const feeds = {
      x_t: new Tensor("float32", x_t, [batch, channels, size, size]),
      t: new Tensor("int64", new BigInt64Array(batch).fill(BigInt(t)), [batch]),
      class_label: new Tensor("int64", BigInt64Array.from(labels, (label) => BigInt(label)), [batch]),
    };
    if (model.guidance_embedding) {
      feeds.guidance = new Tensor("float32", new Float32Array(batch).fill(guidance), [batch]); // w per image
    }
    return (await session.run(feeds)).output.data;
  }

  return async (x_t, t) => {
    const batch = x_t.length / (channels * size * size);
    const labels = classLabels ?? Array(batch).fill(model.num_classes);
    if (model.guidance_embedding) return run(x_t, t, labels, w);
    if (w === 0) return run(x_t, t, labels);
    const doubled = new Float32Array(2 * x_t.length); // [x_t, x_t] under labels [c, null]
    doubled.set(x_t);
    doubled.set(x_t, x_t.length);
    const output = await run(doubled, t, [...labels, ...Array(batch).fill(model.num_classes)]);
    return combine(output.subarray(0, x_t.length), output.subarray(x_t.length), w);
  };
}
