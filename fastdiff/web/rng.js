// Portable sampling noise, the mirror of fastdiff/diffusion/rng.py: the same seed gives the same numbers
// here and in Python, so a seed's image is the same on the web page, in `fastdiff sample` and in the app.
//
// Philox4x32-10 (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3"): block n of a stream
// is a pure function of (counter n, key), ten rounds of 32-bit multiplies and xors, computed exactly here
// (Math.imul for the low word of each 32 x 32 -> 64-bit product, 16-bit halves for the high word). Each
// block's four words become uniforms u = (word + 0.5) / 2^32 and, two by two, standard normals by
// Box-Muller in float64, then rounded to float32.

export const PHILOX_MULTIPLIERS = [0xd2511f53, 0xcd9e8d57];
export const PHILOX_KEY_BUMPS = [0x9e3779b9, 0xbb67ae85]; // the golden ratio and sqrt(3) - 1, as 32-bit fractions
export const PHILOX_ROUNDS = 10;
const TWO_32 = 4294967296;

/** The high 32 bits of the 64-bit product of two uint32 (every partial product is exact in float64). */
function mulHigh(a, b) {
  const aHigh = a >>> 16, aLow = a & 0xffff, bHigh = b >>> 16, bLow = b & 0xffff;
  const middle = aHigh * bLow + aLow * bHigh; // < 2^33
  return (aHigh * bHigh + Math.floor((middle * 65536 + aLow * bLow) / TWO_32)) >>> 0;
}

/** Philox4x32-10 of one counter [c0, c1, c2, c3] under one key [k0, k1] (uint32 each): 4 uint32 words. */
export function philox4x32(counter, key) {
  let [c0, c1, c2, c3] = counter.map((c) => c >>> 0);
  let [k0, k1] = key.map((k) => k >>> 0);
  const [m0, m1] = PHILOX_MULTIPLIERS;
  for (let round = 0; round < PHILOX_ROUNDS; round++) {
    if (round) {
      k0 = (k0 + PHILOX_KEY_BUMPS[0]) >>> 0;
      k1 = (k1 + PHILOX_KEY_BUMPS[1]) >>> 0;
    }
    const high0 = mulHigh(m0, c0), low0 = Math.imul(m0, c0) >>> 0;
    const high1 = mulHigh(m1, c2), low1 = Math.imul(m1, c2) >>> 0;
    [c0, c1, c2, c3] = [(high1 ^ c1 ^ k0) >>> 0, low1, (high0 ^ c3 ^ k1) >>> 0, low0];
  }
  return [c0, c1, c2, c3];
}

/** Four float32-rounded standard normals from four uint32 words, pairs (0, 1) and (2, 3), into out at offset. */
function boxMuller(words, out, offset, count) {
  for (let pair = 0; pair < 2; pair++) {
    const u1 = (words[2 * pair] + 0.5) / TWO_32, u2 = (words[2 * pair + 1] + 0.5) / TWO_32;
    const radius = Math.sqrt(-2.0 * Math.log(u1));
    const angle = 2.0 * Math.PI * u2;
    // z0 = sqrt(-2 ln u1) cos(2 pi u2), z1 = sqrt(-2 ln u1) sin(2 pi u2); Float32Array rounds as Math.fround
    if (2 * pair < count) out[offset + 2 * pair] = radius * Math.cos(angle);
    if (2 * pair + 1 < count) out[offset + 2 * pair + 1] = radius * Math.sin(angle);
  }
}

/** One Philox stream per image, keyed (seed, 0): image i of a grid made with seed s is image 0 of a grid
 * made with seed s + i. Block n has the counter (n mod 2^32, n div 2^32, 0, 0); each draw of k normals per
 * image takes the next ceil(k / 4) blocks of each stream and skips a last block's leftover normals. */
export class ImageRNG {
  constructor(seeds) {
    this.seeds = seeds.map((s) => Number(BigInt.asUintN(32, BigInt(s)))); // int(s) & 0xFFFFFFFF
    this.block = 0; // blocks each stream has drawn so far
  }

  /** (numImages, count) standard normals as one image-major Float32Array of numImages * count. */
  randn(count) {
    const blocks = Math.ceil(count / 4);
    const out = new Float32Array(this.seeds.length * count);
    this.seeds.forEach((seed, image) => {
      for (let b = 0; b < blocks; b++) {
        const n = this.block + b;
        const words = philox4x32([n % TWO_32, Math.floor(n / TWO_32), 0, 0], [seed, 0]);
        boxMuller(words, out, image * count + 4 * b, Math.min(4, count - 4 * b));
      }
    });
    this.block += blocks;
    return out;
  }
}
