// Turning sample arrays into pictures, the mirror of fastdiff/images.py: uint8 images, grids, and
// drawing them on a canvas with crisp (nearest-neighbour) pixels.

/** (B * C * H * W) float32 in [-1, 1] -> B Uint8Array (H * W * 3) RGB images; grayscale repeated.
 * clamp, (x + 1) * 127.5 in float32, then round half to even, as torch.round. */
export function toUint8(x, numImages, channels, size) {
  const pixels = size * size, images = [];
  const value = new Float32Array(1);
  for (let image = 0; image < numImages; image++) {
    const out = new Uint8Array(pixels * 3), base = image * channels * pixels;
    for (let c = 0; c < 3; c++) {
      const plane = base + (channels === 1 ? 0 : c) * pixels;
      for (let p = 0; p < pixels; p++) {
        value[0] = Math.min(Math.max(x[plane + p], -1), 1) + 1;
        value[0] = value[0] * 127.5;
        const v = value[0], floor = Math.floor(v), rest = v - floor;
        out[3 * p + c] = rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
      }
    }
    images.push(out);
  }
  return images;
}

/** Tile RGB images (size x size each) into one RGBA ImageData, columns = ceil(sqrt(B)) by default,
 * white padding, as images.py grid() tiles them. */
export function gridImageData(images, size, { columns = null, pad = 2, gap = null } = {}) {
  columns = columns || Math.ceil(Math.sqrt(images.length));
  const rows = Math.ceil(images.length / columns);
  const inner = gap ?? pad; // between tiles; pad: around the whole grid
  const width = columns * size + (columns - 1) * inner + 2 * pad, height = rows * size + (rows - 1) * inner + 2 * pad;
  const data = new ImageData(width, height);
  data.data.fill(255);
  images.forEach((tile, i) => {
    const left = pad + (i % columns) * (size + inner), top = pad + Math.floor(i / columns) * (size + inner);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const from = 3 * (y * size + x), to = 4 * ((top + y) * width + left + x);
        data.data.set(tile.subarray(from, from + 3), to);
      }
    }
  });
  return data;
}

/** Draw ImageData on a canvas at its own resolution; CSS (image-rendering: pixelated) enlarges it. */
export function drawImageData(canvas, data) {
  canvas.width = data.width;
  canvas.height = data.height;
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = false;
  context.putImageData(data, 0, 0);
}

/** Draw a batch as a grid on a canvas. */
export function drawGrid(canvas, images, size, options = {}) {
  drawImageData(canvas, gridImageData(images, size, options));
}
