import assert from "node:assert/strict";
import { test } from "node:test";
import { known, web } from "./helpers.mjs";

const { toUint8, gridImageData } = await web("images.js");
const { Trajectory, stepCaption } = await web("trajectory.js");

globalThis.ImageData ??= class {
  constructor(width, height) {
    Object.assign(this, { width, height, data: new Uint8ClampedArray(width * height * 4) });
  }
};

test("toUint8 gives Python's to_uint8 (clamped, halves rounded to even, HWC)", () => {
  const [image] = toUint8(Float32Array.from(known.pixels.x), 1, 3, 2);
  assert.deepEqual(Array.from(image), known.pixels.uint8_hwc);
});

test("grayscale images are repeated to RGB", () => {
  const [image] = toUint8(Float32Array.from([-1, 1, 0, 1]), 1, 1, 2);
  assert.deepEqual(Array.from(image), [0, 0, 0, 255, 255, 255, 128, 128, 128, 255, 255, 255]);
});

test("the grid tiles images in rows of ceil(sqrt(B)) with white padding, as images.grid", () => {
  const images = Array.from({ length: 5 }, (_, i) => new Uint8Array(3 * 4).fill(10 * i)); // 2x2 pixels each
  const data = gridImageData(images, 2);
  assert.deepEqual([data.width, data.height], [3 * 2 + 4 * 2, 2 * 2 + 3 * 2]);
  const pixel = (x, y) => Array.from(data.data.subarray(4 * (y * data.width + x), 4 * (y * data.width + x) + 4));
  assert.deepEqual(pixel(0, 0), [255, 255, 255, 255]);
  assert.deepEqual(pixel(2 + 4 + 1, 2 + 1), [10, 10, 10, 255]); // image 1, top row
  assert.deepEqual(pixel(2 + 4, 2 + 4), [40, 40, 40, 255]); // image 4, second row
});

test("a trajectory keeps at most 64 + 1 evenly spaced steps and the last", () => {
  const trajectory = new Trajectory(1, 3, 2);
  const x = new Float32Array(12);
  for (let index = 0; index < 200; index++) {
    trajectory.record({ index, numSteps: 200, t: 199 - index, alphaBar: 0.5, x_t: x, x0: x, eps: x });
  }
  assert.equal(trajectory.steps.length, 51); // every 4th of 200, and the last
  assert.equal(trajectory.steps.at(-1).index, 199);
  const caption = stepCaption(trajectory, trajectory.steps[0]);
  assert.match(caption, /^step 1\/200 · model evaluated at t = 199, sigma_t = 0.707, SNR = 1 ·/);
});
