import assert from "node:assert/strict";
import { test } from "node:test";
import { FakeTensor, known, maxDifference, toyOutput, toySession, web } from "./helpers.mjs";

const { NoiseSchedule } = await web("schedule.js");
const { SAMPLERS, timestepGrid } = await web("samplers.js");
const { ImageRNG } = await web("rng.js");
const { finalImages, sampleSteps } = await web("sampling.js");
const { guidedDenoiser } = await web("guidance.js");

// float32 arithmetic in the same order as torch's; only Math.exp/log/expm1 may differ from libm in a last bit
const TOLERANCE = 1e-6;
const linear = new NoiseSchedule(known.alpha_bar.linear.config);
const count = known.shape.reduce((a, b) => a * b);
const numImages = known.seeds.length;
// a site.json model entry for the toy network (3 x 4 x 4 images, 10 classes and the null class 10)
const toyModel = {
  name: "toy",
  image_channels: 3,
  image_size: 4,
  num_classes: 10,
  prediction: "v",
  guidance_embedding: false,
  guidance_range: null,
  distilled_steps: 0,
};
// the toy network's output as a model would give it: per image t, no labels
const toyDenoiser = (x_t, t) => Promise.resolve(toyOutput(x_t, Array(numImages).fill(t), null, numImages, 500));

test("timestepGrid gives Python's trailing grids", () => {
  for (const { num_timesteps, num_steps, t_start, grid } of known.timestep_grids) {
    assert.deepEqual(timestepGrid(num_timesteps, num_steps, t_start), grid);
  }
  assert.throws(() => timestepGrid(500, 0), { message: "steps must be between 1 and 500, got 0" });
  assert.throws(() => timestepGrid(500, 5, 500), { message: "t_start must be between 0 and 499, got 500" });
});

test("alpha_bar is Python's float32 alpha_bar", () => {
  for (const { config, at, values } of Object.values(known.alpha_bar)) {
    const schedule = new NoiseSchedule(config);
    assert.deepEqual(at.map((t) => schedule.alphaBar[t]), values);
  }
});

for (const [name, run] of Object.entries(known.runs)) {
  test(`${name}: the sampler's final x_t on the toy network equals Python's`, async () => {
    const rng = new ImageRNG(known.seeds);
    const x_T = rng.randn(count);
    const denoiser = run.class_labels
      ? guidedDenoiser(toySession(500), toyModel, run.class_labels, run.guidance, FakeTensor)
      : toyDenoiser;
    const options = { eta: run.eta, rng, prediction: run.prediction };
    const steps = SAMPLERS[run.sampler](denoiser, linear, x_T, known.num_steps, options);
    const records = [];
    for await (const step of steps) records.push(step);
    assert.equal(records.length, known.num_steps);
    assert.deepEqual(records.map((s) => s.index), [0, 1, 2, 3, 4]);
    assert.ok(records.every((s) => s.numSteps === known.num_steps && s.x_t.length === numImages * count));
    const difference = maxDifference(records.at(-1).x_t, run.final_x_t);
    assert.ok(difference <= TOLERANCE, `differs from Python by ${difference}`);
  });
}


test("sampleSteps starts from the seeds' noise and runs the plan through the session", async () => {
  const run = known.runs["ddim-guided-v"];
  const session = toySession(500);
  const plan = { sampler: "ddim", numSteps: known.num_steps, guidance: run.guidance, eta: 0 };
  const x = await finalImages(sampleSteps(session, FakeTensor, toyModel, linear, run.class_labels, known.seeds, plan));
  assert.ok(maxDifference(x, run.final_x_t) <= TOLERANCE);
  assert.equal(session.calls.length, known.num_steps); // both branches in one call per step
  const feeds = session.calls[0];
  assert.deepEqual(feeds.x_t.dims, [4, 3, 4, 4]);
  assert.deepEqual(Array.from(feeds.class_label.data), [3n, 7n, 10n, 10n]);
  assert.deepEqual(Array.from(feeds.t.data), [499n, 499n, 499n, 499n]);
  assert.equal(feeds.guidance, undefined);
});
