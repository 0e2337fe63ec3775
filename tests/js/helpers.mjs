// Shared by the browser edition's tests: the modules under test, the Python side's known values and
// the analytic toy network of make_known_values.py.
import { readFileSync } from "node:fs";

export const web = (name) => import(new URL(`../../fastdiff/web/${name}`, import.meta.url));
export const known = JSON.parse(readFileSync(new URL("known_values.json", import.meta.url)));

const f32 = Math.fround;

/** 0.1 x_t + 0.01 t / T (+ 0.02 label) in float32, as make_known_values.toy_output; labels: one per image. */
export function toyOutput(x_t, t, labels, numImages, numTimesteps) {
  const count = x_t.length / numImages, out = new Float32Array(x_t.length);
  for (let image = 0; image < numImages; image++) {
    let shift = f32(f32(f32(0.01) * t[image]) / numTimesteps);
    if (labels) shift = f32(shift + f32(f32(0.02) * labels[image]));
    for (let i = image * count; i < (image + 1) * count; i++) out[i] = f32(f32(0.1) * x_t[i]) + shift;
  }
  return out;
}

/** A stand-in for ort.Tensor and an InferenceSession running the toy network on the feeds it gets. */
export class FakeTensor {
  constructor(type, data, dims) {
    Object.assign(this, { type, data, dims });
  }
}

export function toySession(numTimesteps) {
  const calls = [];
  return {
    calls,
    async run(feeds) {
      calls.push(feeds);
      const batch = feeds.x_t.dims[0];
      const t = Array.from(feeds.t.data, Number), labels = Array.from(feeds.class_label.data, Number);
      return { output: { data: toyOutput(feeds.x_t.data, t, labels, batch, numTimesteps) } };
    },
  };
}

/** The largest |a - b| over two arrays of equal length. */
export function maxDifference(a, b) {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} and ${b.length}`);
  return Math.max(...Array.from(a, (value, i) => Math.abs(value - b[i])));
}
