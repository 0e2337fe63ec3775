// The Live section, the page's side of fastdiff/app/live.py: the fastest distilled student redrawn for
// every move of a control (class, guidance, seed, and a slider between two seeds that moves the starting
// noise along the great circle between their noises). At most one pass is in flight: a move during a pass
// only marks the picture stale, and the newest setting is sent when the pass ends (no queue of stale
// requests). document.body.dataset.live is "idle" | "running" | "done" | "error"; window.fastdiff.liveImages
// holds the last picture's images and livePasses counts the passes sent.

import { formatG, plural } from "./format.js";
import { DISTILLED_SAMPLER, makeRequest, wholeNumber } from "./generate.js";
import { drawGrid, toUint8 } from "./images.js";
import { checkSeed } from "./sampling.js";
import { NoiseSchedule } from "./schedule.js";

const $ = (id) => document.getElementById(id);
export const LIVE_IMAGES = ["1", "4", "16"]; // one picture, a 2x2 or a 4x4 grid

/** The between-seeds slider's value as a number in [0, 1]; an Error naming what was sent. */
export function fractionBetween(value) {
  const number = Number(value);
  if (value === "" || !(0 <= number && number <= 1)) {
    throw new Error(`between the two seeds must be a number from 0 to 1, got ${value}`);
  }
  return number;
}

/** Wire the Live controls; `send(request, handlers)` posts a request to the worker. */
export function setUpLive({ site, send, fastestStudent }) {
  const student = fastestStudent();
  const controls = ["live-class", "live-guidance", "live-seed", "live-other-seed", "live-between", "live-images"];
  if (!student) {
    $("live-message").textContent = "No distilled student could be loaded, so the Live section is off.";
    controls.forEach((id) => ($(id).disabled = true));
    return;
  }
  $("live-guidance").max = student.guidance_range?.[1] ?? 4;
  const schedule = new NoiseSchedule(student.diffusion);
  let inFlight = false, stale = false;

  function settings() {
    const count = $("live-images").value;
    if (!LIVE_IMAGES.includes(count)) {
      throw new Error(`images must be one of ${LIVE_IMAGES.join(", ")}, got '${count}'`);
    }
    const request = makeRequest(student, schedule, Number($("live-class").value), DISTILLED_SAMPLER,
      student.distilled_steps, $("live-guidance").value, $("live-seed").value, count);
    const other = wholeNumber($("live-other-seed").value, "second seed");
    checkSeed(other, request.seeds.length);
    const fraction = fractionBetween($("live-between").value);
    request.between = { seeds: request.seeds.map((_, i) => other + i), fraction };
    return request;
  }

  function showValues() {
    $("live-guidance-value").textContent = $("live-guidance").value;
    $("live-seed-value").textContent = $("live-seed").value;
    $("live-other-seed-value").textContent = $("live-other-seed").value;
    $("live-between-value").textContent = Number($("live-between").value).toFixed(2);
  }

  function draw() {
    stale = false;
    let request;
    try {
      request = settings();
    } catch (e) {
      $("live-message").textContent = e.message;
      document.body.dataset.live = "error";
      return;
    }
    $("live-message").textContent = "";
    inFlight = true;
    window.fastdiff.livePasses += 1;
    document.body.dataset.live = "running";
    let last = null;
    const finish = () => {
      inFlight = false;
      if (stale) draw();
    };
    send(request, {
      update({ step }) {
        last = step;
      },
      complete({ seconds }) {
        const count = request.seeds.length, size = student.image_size;
        const images = toUint8(last.x_t, count, student.image_channels, size);
        window.fastdiff.liveImages = images;
        drawGrid($("live-image"), images, size, { pad: 0 });
        const className = site.class_names[request.classLabels[0]], steps = student.distilled_steps;
        $("live-time").textContent =
          `${(1000 * seconds).toFixed(0)} ms · ${plural(count, "image")} (${className}) · ` +
          `${student.name}, ${plural(steps, "step")} · w = ${formatG(request.guidance)} · ` +
          `seed ${request.seeds[0]} → ${request.between.seeds[0]} at ${request.between.fraction.toFixed(2)}`;
        document.body.dataset.live = "done";
        finish();
      },
      error({ message }) {
        $("live-message").textContent = message;
        document.body.dataset.live = "error";
        finish();
      },
      cancelled: finish,
    });
  }

  const changed = () => {
    showValues();
    stale = true;
    if (!inFlight) draw();
  };
  controls.forEach((id) => $(id).addEventListener("input", changed));
  showValues();
  draw();
}
