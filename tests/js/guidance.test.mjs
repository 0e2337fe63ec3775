import assert from "node:assert/strict";
import { test } from "node:test";
import { FakeTensor, known, maxDifference, toySession, web } from "./helpers.mjs";

const { combine, guidedDenoiser } = await web("guidance.js");
const { noiseBetween, slerp } = await web("sampling.js");

const entry = (fields) => ({
  image_channels: 3, image_size: 2, num_classes: 10, prediction: "v",
  guidance_embedding: false, guidance_range: null, distilled_steps: 0, ...fields,
});
const x = Float32Array.from({ length: 24 }, (_, i) => i / 24); // two 3x2x2 images

test("combine is (1 + w) cond - w uncond", () => {
  assert.deepEqual(Array.from(combine(Float32Array.of(1, 2), Float32Array.of(0.5, 4), 2)), [2, -2]);
});

test("w = 0 runs the plain batch once with the labels", async () => {
  const session = toySession(500);
  await guidedDenoiser(session, entry({}), [3, 7], 0, FakeTensor)(x, 99);
  assert.equal(session.calls.length, 1);
  assert.deepEqual(session.calls[0].x_t.dims, [2, 3, 2, 2]);
  assert.deepEqual(Array.from(session.calls[0].class_label.data), [3n, 7n]);
});

test("a guidance-distilled student gets w per image in one run of the plain batch", async () => {
  const session = toySession(500);
  const student = entry({ guidance_embedding: true, guidance_range: [0, 4], distilled_steps: 2 });
  await guidedDenoiser(session, student, [3, 7], 2.5, FakeTensor)(x, 499);
  assert.equal(session.calls.length, 1);
  const { guidance, t } = session.calls[0];
  assert.deepEqual([guidance.type, Array.from(guidance.data), guidance.dims], ["float32", [2.5, 2.5], [2]]);
  assert.deepEqual([t.type, Array.from(t.data)], ["int64", [499n, 499n]]);
});

test("without labels (or classes) the null class is used and guidance is off", async () => {
  const session = toySession(500);
  await guidedDenoiser(session, entry({}), null, 3, FakeTensor)(x, 10);
  assert.equal(session.calls.length, 1);
  assert.deepEqual(Array.from(session.calls[0].class_label.data), [10n, 10n]);
});

test("noiseBetween moves along the arc between two seeds' noise, as Python's noise_between", () => {
  const { seeds, other_seeds, fraction, noise } = known.between;
  const count = known.shape.reduce((a, b) => a * b);
  assert.ok(maxDifference(noiseBetween(seeds, other_seeds, fraction, count), noise) <= 1e-6);
  const a = Float32Array.of(1, 0), b = Float32Array.of(0, 1);
  assert.deepEqual(Array.from(slerp(a, b, 0, 1)), [1, 0]);
  assert.ok(maxDifference(slerp(a, b, 0.5, 1), [Math.SQRT1_2, Math.SQRT1_2]) < 1e-7);
});
