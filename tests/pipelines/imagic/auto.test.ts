// The automatic choice's rule (chooseCandidate), on hand-made scores: the cut between the input's own
// alignment and the best candidate's, the most preserving edited candidate, ties, the failed edit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseCandidate, INVERTED_SEED, type Candidate } from '../../../src/pipelines/imagic/auto.js';

const c = (eta: number, seed: number, alignment: number, preservation: number): Candidate => ({ eta, seed, alignment, preservation });

test('edited = at least floor + gain * (ceiling - floor); of those, the most preserving', () => {
  const cands = [
    c(0.4, 0, 12, -0.01), // barely edited: most like the input, but below the cut
    c(0.8, 0, 30, -0.20), // edited, keeps more
    c(1.2, 0, 34, -0.60), // best aligned, over-edited
    c(0.8, 1, 29, -0.10), // edited enough? floor 10, ceiling 34, gain 0.8 -> cut 29.2: no
  ];
  const ch = chooseCandidate(cands, 10, { gain: 0.8 });
  assert.ok(Math.abs(ch.threshold - 29.2) < 1e-12);
  assert.deepEqual(ch.eligible, [1, 2]);
  assert.equal(ch.index, 1);
  assert.match(ch.reason, /the input scores 10.00 and the best candidate 34.00; 2 of 4 candidates reach 29.20 \(0.8 of the way\)/);
  // a lower gain lets the 29 in, and it keeps more
  assert.equal(chooseCandidate(cands, 10, { gain: 0.5 }).index, 3);
  // gain 1: only the best-aligned
  assert.equal(chooseCandidate(cands, 10, { gain: 1 }).index, 2);
});

test('ties: the smaller eta, then the smaller seed (the inverted noise first)', () => {
  const cands = [c(0.9, 2, 30, -0.2), c(0.7, 3, 30, -0.2), c(0.7, INVERTED_SEED, 30, -0.2), c(0.7, 0, 30, -0.2)];
  assert.equal(chooseCandidate(cands, 0, { gain: 0.8 }).index, 2);
});

test('when nothing aligns better than the input, the best-aligned candidate, and the reason says so', () => {
  const ch = chooseCandidate([c(0.5, 0, 10, -0.1), c(1, 0, 14, -0.3)], 20, { gain: 0.8 });
  assert.equal(ch.index, 1);
  assert.match(ch.reason, /no candidate aligns with the text better than the input/);
});

test('bad input is refused', () => {
  assert.throws(() => chooseCandidate([], 0), /no candidates/);
  assert.throws(() => chooseCandidate([c(1, 0, 1, 1)], 0, { gain: 1.5 }), /gain must be in \[0, 1\]/);
  assert.throws(() => chooseCandidate([c(1, 0, 1, 1)], Number.NaN), /inputAlignment/);
});
