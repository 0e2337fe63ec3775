// The page: builds the controls from site.json, sends requests to the model worker (worker.js) and draws
// what comes back; it computes nothing but checks and pictures. document.body.dataset.state is "loading" |
// "ready" | "running" | "done" | "cancelled" | "error"; window.fastdiff holds the last run's final images
// (lastImages: one Uint8Array of H * W * 3 RGB per image), its timings (lastRun) and the Live ones.

import { formatG, plural } from "./format.js";
import { DISTILLED_SAMPLER, PAGE_SAMPLERS, makeRequest } from "./generate.js";
import { drawGrid, toUint8 } from "./images.js";
import { setUpLive } from "./live.js";
import { DEFAULT_STEPS, SAMPLER_NAMES } from "./samplers.js";
import { NoiseSchedule } from "./schedule.js";
import { Trajectory, stepCaption } from "./trajectory.js";

const $ = (id) => document.getElementById(id);
const page = { site: null, worker: null, models: new Map(), handlers: new Map(), nextId: 1, run: null, fatal: false };
window.fastdiff = { lastImages: null, lastRun: null, liveImages: null, livePasses: 0, ready: null };

function setState(state) {
  document.body.dataset.state = state;
  $("generate").disabled = state === "loading" || state === "running" || page.fatal;
  $("cancel").disabled = state !== "running";
}

/** A failure that stops the page: said on the page, never only in the console. */
function fatal(message) {
  page.fatal = true;
  $("status").textContent = message;
  $("backend").textContent = "The model runtime is not running.";
  setState("error");
}

/** Send a request to the worker; `handlers` get its update, complete, cancelled and error messages. */
function send(request, handlers) {
  const id = page.nextId++;
  page.handlers.set(id, handlers);
  page.worker.postMessage({ type: "generate", id, request });
  return id;
}

function onWorkerMessage({ data }) {
  if (data.status === "ready") return onReady(data);
  if (data.status === "error" && data.id === null) return fatal(`The models could not be loaded: ${data.message}`);
  const handlers = page.handlers.get(data.id);
  if (!handlers) return;
  if (data.status !== "update") page.handlers.delete(data.id);
  handlers[data.status]?.(data);
}

function option(select, value, text = value) {
  const element = document.createElement("option");
  Object.assign(element, { value, textContent: text });
  select.append(element);
}

const usable = (entry) => page.models.get(entry.name)?.ok;
/** The distilled sampler's model: the usable student with the fewest steps. */
function fastestStudent() {
  const students = page.site.models.filter((m) => m.distilled_steps > 0 && usable(m));
  return students.sort((a, b) => a.distilled_steps - b.distilled_steps)[0] ?? null;
}

function buildControls(site) {
  for (const select of [$("class"), $("live-class")]) site.class_names.forEach((name, i) => option(select, i, name));
  $("class").value = $("live-class").value = String(Math.max(0, site.class_names.indexOf("cat")));
  for (const key of PAGE_SAMPLERS) option($("sampler"), SAMPLER_NAMES[key]);
  option($("sampler"), DISTILLED_SAMPLER, "Distilled");
  $("sampler").value = SAMPLER_NAMES["dpm++"];
  for (const entry of site.models.filter((m) => !m.distilled_steps)) option($("model"), entry.name, entry.title);
  const defaultSteps = (key) => site.default_steps?.[key] ?? DEFAULT_STEPS[key];
  $("steps").value = defaultSteps("dpm++");
  $("sampler").addEventListener("change", () => {
    const student = $("sampler").value === DISTILLED_SAMPLER ? fastestStudent() : null;
    const key = Object.keys(SAMPLER_NAMES).find((k) => SAMPLER_NAMES[k] === $("sampler").value);
    $("steps").value = student ? student.distilled_steps : defaultSteps(key);
    $("model").disabled = student !== null;
  });
}

function onReady(ready) {
  window.fastdiff.ready = ready;
  ready.models.forEach((m) => page.models.set(m.name, m));
  const isolation = ready.crossOriginIsolated
    ? "cross-origin isolated"
    : "not cross-origin isolated (the server sends no COOP/COEP headers), so one thread";
  $("backend").textContent = `${ready.backend} · ${plural(ready.threads, "thread")} · ${isolation}`;
  listModels(ready.models);
  const failed = ready.models.filter((m) => !m.ok);
  if (failed.length === ready.models.length) return fatal(`No model could be loaded: ${failed[0]?.message}`);
  const loaded = plural(ready.models.length - failed.length, "model");
  $("status").textContent =
    `Ready: ${loaded} loaded and checked in ${ready.seconds.toFixed(1)} s.` +
    failed.map((m) => ` ${m.message}.`).join("");
  setState("ready");
  setUpLive({ site: page.site, send, fastestStudent });
}

/** The recorded quality of a model (its eval.json), in a few words. */
function qualityText(quality) {
  if (!quality) return "";
  if (quality.class_accuracy === undefined) return ` · ${JSON.stringify(quality)}`;
  const at = `${SAMPLER_NAMES[quality.sampler] ?? quality.sampler}-${quality.steps}, w = ${formatG(quality.guidance)}`;
  const kid = quality.kid === undefined ? "" : `, KID ${formatG(quality.kid, 3)}`;
  return ` · class accuracy ${(100 * quality.class_accuracy).toFixed(1)} %${kid} (${at}, ${quality.n} images)`;
}

function listModels(models) {
  for (const entry of page.site.models) {
    const status = models.find((m) => m.name === entry.name);
    const steps = entry.distilled_steps;
    const kind = steps ? `distilled student, ${plural(steps, "step")}` : `${entry.prediction}-prediction`;
    const item = document.createElement("li");
    item.textContent =
      `${entry.title} (${entry.name}, ${kind}, ${(entry.bytes / 1e6).toFixed(1)} MB)` +
      (status?.ok ? ` · checked${qualityText(entry.quality)}` : ` · not usable: ${status?.message}`);
    $("models").append(item);
  }
}

function servingModel() {
  const student = $("sampler").value === DISTILLED_SAMPLER;
  const entry = student ? fastestStudent() : page.site.models.find((m) => m.name === $("model").value);
  if (!entry) throw new Error(student ? "no distilled student could be loaded on this page" : "choose a model");
  const status = page.models.get(entry.name);
  if (!status?.ok) throw new Error(status?.message || `model ${entry.name} is not loaded`);
  return entry;
}

function generate(event) {
  event.preventDefault();
  $("message").textContent = "";
  let entry, request;
  try {
    entry = servingModel();
    const [classIndex, sampler] = [Number($("class").value), $("sampler").value];
    const form = [$("steps").value, $("guidance").value, $("seed").value, $("images").value];
    request = makeRequest(entry, new NoiseSchedule(entry.diffusion), classIndex, sampler, ...form);
  } catch (e) {
    $("message").textContent = e.message;
    return setState("error");
  }
  const count = request.seeds.length, channels = entry.image_channels, size = entry.image_size;
  const pictures = (x) => toUint8(x, count, channels, size);
  const trajectory = new Trajectory(count, channels, size);
  let last = null;
  setState("running");
  $("progress").textContent = `starting ${plural(count, "image")} on ${entry.name}…`;
  page.run = send(request, {
    update({ step }) {
      last = step;
      trajectory.record(step);
      drawGrid($("xt"), pictures(step.x_t), size);
      drawGrid($("x0"), pictures(step.x0), size);
      const snr = formatG(step.snr, 3);
      $("progress").textContent = `step ${step.index + 1}/${step.numSteps} · t = ${step.t} · SNR = ${snr}`;
    },
    complete({ seconds, imagesPerSecond, modelSeconds }) {
      const images = pictures(last.x_t);
      window.fastdiff.lastImages = images;
      window.fastdiff.lastRun = { request, seconds, imagesPerSecond, modelSeconds };
      drawGrid($("grid"), images, size);
      offerDownload();
      $("elapsed").textContent =
        `${plural(count, "image")} in ${seconds.toFixed(2)} s · ${imagesPerSecond.toFixed(2)} images/s · ` +
        `${modelSeconds.toFixed(2)} s in the model, ${(seconds - modelSeconds).toFixed(2)} s around it`;
      $("progress").textContent = `done: step ${last.numSteps}/${last.numSteps}`;
      showReplay(trajectory);
      setState("done");
    },
    cancelled() {
      $("progress").textContent = `cancelled after step ${last ? last.index + 1 : 0}`;
      if (trajectory.steps.length) showReplay(trajectory);
      setState("cancelled");
    },
    error({ message }) {
      $("message").textContent = message;
      setState("error");
    },
  });
}

function offerDownload() {
  const link = $("download");
  $("grid").toBlob((blob) => {
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(blob);
    link.hidden = false;
  }, "image/png");
}

/** The replay slider over a kept run: x_t | x0 | eps of one image at one step, as the app's Generate tab. */
function showReplay(trajectory) {
  const slider = $("replay"), choice = $("replay-image");
  slider.max = trajectory.steps.length - 1;
  slider.value = slider.max;
  choice.replaceChildren();
  for (let i = 0; i < trajectory.numImages; i++) option(choice, i, String(i + 1));
  const draw = () => {
    const step = trajectory.steps[Number(slider.value)], image = Number(choice.value);
    const row = [step.x_t[image], step.x0[image], step.eps[image]];
    drawGrid($("replay-view"), row, trajectory.imageSize, { columns: 3, pad: 0, gap: 4 });
    $("replay-caption").textContent = stepCaption(trajectory, step);
  };
  slider.oninput = choice.onchange = draw;
  $("replay-panel").hidden = false;
  draw();
}

async function start() {
  if (typeof WebAssembly !== "object") {
    return fatal("This browser has no WebAssembly (or it is off), which the model needs: use a current browser.");
  }
  try {
    const response = await fetch("site.json");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    page.site = await response.json();
  } catch (e) {
    return fatal(
      `The site description site.json could not be read (${e.message}): serve the folder that fastdiff export web ` +
        "wrote, through a web server.",
    );
  }
  buildControls(page.site);
  $("status").textContent = `Loading ${plural(page.site.models.length, "model")}…`;
  try {
    page.worker = new Worker("worker.js", { type: "module" });
  } catch (e) {
    return fatal(`The model worker could not start (${e.message}): this browser may not support module workers.`);
  }
  page.worker.onmessage = onWorkerMessage;
  page.worker.onerror = (event) =>
    fatal(
      `The model worker (worker.js) failed to load or stopped${event.message ? `: ${event.message}` : ""}; ` +
        "reload the page, or try a current browser.",
    );
  page.worker.postMessage({ type: "load" });
  $("form").addEventListener("submit", generate);
  $("cancel").addEventListener("click", () => page.worker.postMessage({ type: "cancel", id: page.run }));
}

start().catch((e) => fatal(`The page failed to start: ${e.message}`));
