// The model side of the page: a module Web Worker that loads ONNX Runtime Web and the site's models,
// checks each model against the numbers its export recorded, then runs sampling requests one at a time,
// one "update" message per sampler step (the page only draws). Protocol (transformers.js style):
//   page -> worker  {type: "load"} | {type: "generate", id, request} | {type: "cancel", id}
//   worker -> page  {status: "ready", backend, threads, crossOriginIsolated, models, seconds}
//                   {status: "update", id, step: {index, numSteps, t, alphaBar, snr, x_t, x0, eps}}
//                   {status: "complete", id, seconds, imagesPerSecond, modelSeconds}
//                   {status: "cancelled", id} | {status: "error", id, message} (id null: loading failed)
// A request: {model, sampler, numSteps, guidance, eta, seeds, classLabels[, between: {seeds, fraction}]}.

import { ImageRNG } from "./rng.js";
import { makePlan, noiseBetween, sampleSteps } from "./sampling.js";
import { NoiseSchedule } from "./schedule.js";

let ort = null; // the runtime module, once imported
const loaded = new Map(); // model name -> {entry, schedule, session}
const cancelled = new Set(); // ids asked to stop
let queue = Promise.resolve(); // requests run one after the other
const post = (message, transfer = []) => self.postMessage(message, transfer);
const AGAIN = "run fastdiff export web again";
const name = (entry) => `${entry.name} (${entry.file})`;

self.onmessage = ({ data }) => {
  if (data.type === "load") load().catch((e) => post({ status: "error", id: null, message: e.message }));
  else if (data.type === "generate") queue = queue.then(() => generate(data.id, data.request));
  else if (data.type === "cancel") cancelled.add(data.id);
};

/** Let the worker's message queue run (a Cancel) between two steps; a MessageChannel round trip, not a
 * setTimeout, which browsers clamp to 4 ms when nested. */
function yieldToMessages() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

async function fetchOrExplain(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`${what} (${url}) could not be fetched: ${e.message}; open the page through its web server`);
  }
  if (!response.ok) throw new Error(`${what} (${url}) is missing (HTTP ${response.status}): ${AGAIN}`);
  return response;
}

/** The execution provider: WebGPU where the site ships it and the browser gives an adapter, else WASM. */
async function chooseBackend(site) {
  if (site.runtime.webgpu && self.navigator.gpu) {
    try {
      if (await self.navigator.gpu.requestAdapter()) return "webgpu";
    } catch {
      // no adapter: WASM
    }
  }
  return "wasm";
}

async function load() {
  const start = performance.now();
  if (typeof WebAssembly !== "object") throw new Error("this browser has no WebAssembly, which the runtime needs");
  const site = await (await fetchOrExplain("site.json", "the site description")).json();
  const moduleUrl = new URL(site.runtime.module, self.location.href);
  try {
    ort = await import(moduleUrl.href);
  } catch (e) {
    throw new Error(`the model runtime ${site.runtime.module} could not be loaded (${e.message}): ${AGAIN}`);
  }
  const threads = self.crossOriginIsolated ? Math.min(4, self.navigator.hardwareConcurrency || 1) : 1;
  ort.env.wasm.wasmPaths = new URL(".", moduleUrl).href; // runtime/, as an absolute URL
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = false; // this is the worker already
  const backend = await chooseBackend(site);
  const models = [];
  for (const entry of site.models) models.push(await loadModel(entry, backend));
  post({
    status: "ready",
    backend: backend === "webgpu" ? "WebGPU" : "WASM",
    threads,
    crossOriginIsolated: self.crossOriginIsolated,
    models,
    seconds: (performance.now() - start) / 1000,
  });
}

/** Create a model's session and run its check: {name, ok, message, maxDifference}. */
async function loadModel(entry, backend) {
  try {
    const bytes = new Uint8Array(await (await fetchOrExplain(entry.file, `model ${entry.name}`)).arrayBuffer());
    let session;
    try {
      const options = { executionProviders: [backend], graphOptimizationLevel: "all" };
      session = await ort.InferenceSession.create(bytes, options);
    } catch (e) {
      throw new Error(`model ${name(entry)} could not be read (${e.message}); the file may be damaged: ${AGAIN}`);
    }
    const maxDifference = await checkModel(session, entry);
    loaded.set(entry.name, { entry, schedule: new NoiseSchedule(entry.diffusion), session });
    return { name: entry.name, ok: true, message: "", maxDifference };
  } catch (e) {
    return { name: entry.name, ok: false, message: e.message, maxDifference: null };
  }
}

/** The largest difference of the check's first outputs and mean |output| from the export's; throws
 * with a sentence above the tolerance. */
async function checkModel(session, entry) {
  const { check } = entry;
  if (!check) return null;
  const size = entry.image_size, channels = entry.image_channels;
  const feeds = {
    x_t: new ort.Tensor("float32", new ImageRNG([check.seed]).randn(channels * size * size), [1, channels, size, size]),
    t: new ort.Tensor("int64", BigInt64Array.of(BigInt(check.t)), [1]),
    class_label: new ort.Tensor("int64", BigInt64Array.of(BigInt(check.class_label)), [1]),
  };
  if (entry.guidance_embedding) feeds.guidance = new ort.Tensor("float32", Float32Array.of(check.guidance), [1]);
  const output = (await session.run(feeds)).output.data;
  const meanAbs = output.reduce((sum, value) => sum + Math.abs(value), 0) / output.length;
  const differences = check.output_head.map((value, i) => Math.abs(output[i] - value));
  const difference = Math.max(...differences, Math.abs(meanAbs - check.output_mean_abs));
  if (!(difference <= check.tolerance)) {
    throw new Error(
      `model ${name(entry)} fails its check: its output differs from the export's by ${difference.toPrecision(3)} ` +
        `(tolerance ${check.tolerance}); the file may be damaged or from another export: ${AGAIN}`,
    );
  }
  return difference;
}

/** An InferenceSession whose run() adds its time to `timer.seconds`. */
function timedSession(session, timer) {
  return {
    async run(feeds) {
      const start = performance.now();
      try {
        return await session.run(feeds);
      } finally {
        timer.seconds += (performance.now() - start) / 1000;
      }
    },
  };
}

async function generate(id, request) {
  if (cancelled.delete(id)) return post({ status: "cancelled", id });
  const start = performance.now(), timer = { seconds: 0 };
  try {
    const model = loaded.get(request.model);
    if (!model) throw new Error(`model ${request.model} is not loaded here: reload the page, or ${AGAIN}`);
    const { entry, schedule } = model;
    const plan = makePlan(entry, schedule, request.sampler, request.numSteps, request.guidance, request.eta ?? 0);
    const count = entry.image_channels * entry.image_size * entry.image_size;
    const between = request.between;
    const startNoise = between ? noiseBetween(request.seeds, between.seeds, between.fraction, count) : null;
    const session = timedSession(model.session, timer);
    const { classLabels, seeds } = request;
    const steps = sampleSteps(session, ort.Tensor, entry, schedule, classLabels, seeds, plan, startNoise);
    for await (const step of steps) {
      // copies, so that the sampler keeps its arrays (DPM-Solver++ reads the previous x0) while the page owns these
      const [x_t, x0, eps] = [step.x_t.slice(), step.x0.slice(), step.eps.slice()];
      const alphaBar = schedule.alphaBar[step.t];
      const snr = schedule.snr(step.t);
      const record = { index: step.index, numSteps: step.numSteps, t: step.t, alphaBar, snr, x_t, x0, eps };
      post({ status: "update", id, step: record }, [x_t.buffer, x0.buffer, eps.buffer]);
      await yieldToMessages();
      if (cancelled.delete(id)) return post({ status: "cancelled", id });
    }
    const seconds = (performance.now() - start) / 1000;
    const imagesPerSecond = seeds.length / seconds;
    post({ status: "complete", id, seconds, imagesPerSecond, modelSeconds: timer.seconds });
  } catch (e) {
    post({ status: "error", id, message: e.message });
  }
}
