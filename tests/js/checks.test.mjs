import assert from "node:assert/strict";
import { test } from "node:test";
import { known, web } from "./helpers.mjs";

const { makeRequest } = await web("generate.js");
const { NoiseSchedule } = await web("schedule.js");
const { checkSampler } = await web("samplers.js");
const { checkGuidance } = await web("guidance.js");
const { checkSeed, checkDistilledGrid } = await web("sampling.js");
const { formatG } = await web("format.js");

const CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
const entry = (fields) => ({
  image_channels: 3, image_size: 32, num_classes: 10, prediction: "v", class_names: CLASSES,
  guidance_embedding: false, guidance_range: null, distilled_steps: 0, ...fields,
});
const MODELS = {
  base: entry({ name: "cifar10-base" }),
  student: entry({ name: "cifar10-distilled-2", guidance_embedding: true, guidance_range: [0, 4], distilled_steps: 2 }),
};
const schedule = new NoiseSchedule({ num_timesteps: 500, schedule: "linear", beta_start: 1e-4, beta_end: 0.02 });

for (const { model, form, message } of known.forms) {
  const { class_name, sampler, steps, guidance, seed, images } = form;
  test(`${sampler}, steps ${steps}, w ${guidance}, seed ${seed}, ${images} images: ${message ?? "accepted"}`, () => {
    const ask = () =>
      makeRequest(MODELS[model], schedule, CLASSES.indexOf(class_name), sampler, steps, guidance, seed, images);
    if (message === null) {
      const request = ask();
      assert.equal(request.seeds.length, Number(images));
      assert.equal(request.seeds[0], Number(seed));
      assert.deepEqual(request.classLabels, Array(Number(images)).fill(CLASSES.indexOf(class_name)));
    } else {
      assert.throws(ask, { message });
    }
  });
}

test("the lower checks give Python's messages", () => {
  const unknown = "unknown sampler 'euler': use one of ddpm, ddim, dpm++, dpm++sde";
  assert.throws(() => checkSampler("euler", 10, 0, 500), { message: unknown });
  assert.equal(checkSampler("dpm++", null, 0, 500), 20);
  assert.equal(checkSampler("ddpm", null, 0, 500), 500);
  assert.throws(() => checkSampler("ddim", 10, 2, 500), { message: "eta must be between 0 and 1, got 2.0" });
  assert.throws(() => checkGuidance(NaN), { message: "guidance weight must be between 0 and 10, got nan" });
  assert.throws(() => checkGuidance(-0.5), { message: "guidance weight must be between 0 and 10, got -0.5" });
  assert.throws(() => checkSeed(-1, 16), { message: "seed must be between 0 and 2147483631 for 16 images, got -1" });
  assert.throws(() => checkDistilledGrid(MODELS.student, "ddim", 2, 0.5), {
    message:
      "this checkpoint was distilled for DDIM with 2 steps (eta 0), the only grid it was trained on; " +
      "got DDIM with 2 steps and eta 0.5",
  });
});

test("formatG writes numbers as Python's format(x, 'g')", () => {
  const cases = { 11: "11", 10.5: "10.5", 1e30: "1e+30", 1e-7: "1e-07", 0.0001: "0.0001", 1234567: "1.23457e+06" };
  for (const [x, text] of Object.entries(cases)) assert.equal(formatG(Number(x)), text);
  assert.equal(formatG(Infinity), "inf");
});
