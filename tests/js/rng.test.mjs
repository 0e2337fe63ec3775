import assert from "node:assert/strict";
import { test } from "node:test";
import { known, web } from "./helpers.mjs";

const { philox4x32, ImageRNG } = await web("rng.js");
const hex = (words) => words.map((w) => w.toString(16).padStart(8, "0")).join(" ");

test("Philox4x32-10 gives Random123's known answers", () => {
  assert.equal(hex(philox4x32([0, 0, 0, 0], [0, 0])), "6627e8d5 e169c58d bc57ac4c 9b00dbd8");
  const ones = 0xffffffff;
  assert.equal(hex(philox4x32([ones, ones, ones, ones], [ones, ones])), "408f276d 41c83b0e a20bc7c6 6d5451fd");
  assert.equal(
    hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])),
    "d16cfe09 94fdcceb 5001e420 24126ea1",
  );
});

test("ImageRNG draws Python's numbers", () => {
  const expected = [
    0.0002915676450356841, -0.30484697222709656, 1.78875732421875, 1.0678725242614746, 0.3764035105705261,
    -1.287011742591858,
  ];
  assert.deepEqual(Array.from(new ImageRNG([7]).randn(6)), expected);
  const count = known.shape.reduce((a, b) => a * b);
  assert.deepEqual(Array.from(new ImageRNG(known.seeds).randn(count)), known.noise);
  const rng = new ImageRNG([5]);
  assert.deepEqual([Array.from(rng.randn(5)), Array.from(rng.randn(5))], known.two_draws);
});

test("image i of seeds [s, s + 1] is image 0 of seeds [s + 1], and draws are image-major", () => {
  const pair = new ImageRNG([11, 12]).randn(10);
  assert.equal(pair.length, 20);
  assert.deepEqual(pair.subarray(10), new ImageRNG([12]).randn(10));
  assert.deepEqual(pair.subarray(0, 10), new ImageRNG([11]).randn(10));
});

test("consecutive draws differ and each starts on a new block", () => {
  const rng = new ImageRNG([3]);
  const first = rng.randn(3), second = rng.randn(3);
  assert.notDeepEqual(first, second);
  assert.deepEqual(second, new ImageRNG([3]).randn(8).subarray(4, 7)); // block 1: leftover of block 0 skipped
});

test("seeds are taken mod 2^32, as Python's int(s) & 0xFFFFFFFF", () => {
  assert.deepEqual(new ImageRNG([2 ** 32 + 9]).randn(4), new ImageRNG([9]).randn(4));
  assert.deepEqual(new ImageRNG([-1]).randn(4), new ImageRNG([2 ** 32 - 1]).randn(4));
});
