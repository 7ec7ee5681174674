// The edit benchmark's fixed cases (20 of each kind, one attribute changed, the target naming it)
// and its summary arithmetic.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCaption } from '../../src/shapes/captions.js';
import { EDIT_KINDS, editBenchmarkCases, rates, summarize, type CaseResult, type ScoredOutcome } from '../../src/shapes/edit-benchmark.js';

describe('edit benchmark', () => {
  test('100 fixed cases, 20 per kind, each naming a new value of its attribute', () => {
    const cases = editBenchmarkCases();
    assert.equal(cases.length, 100);
    assert.deepEqual(editBenchmarkCases(), cases, 'fixed by the seed');
    for (const kind of EDIT_KINDS) assert.equal(cases.filter((c) => c.kind === kind).length, 20);
    for (const c of cases) {
      const p = parseCaption(c.target);
      assert.deepEqual(p.unknownWords, [], c.target);
      const named = p.attributes as Record<string, string>;
      assert.notEqual(named[c.kind], undefined, `${c.target} names its ${c.kind}`);
      assert.notEqual(named[c.kind], c.input[c.kind], `${c.target} changes the ${c.kind}`);
      const also = c.kind === 'shape' ? 'color' : 'shape';
      assert.equal(named[also], c.input[also], `${c.target} keeps the ${also}`);
      assert.equal(Object.keys(named).length, 2);
    }
  });

  test('rates, best single settings, the automatic choice and the upper bounds', () => {
    assert.deepEqual(rates([{ success: true, preserved: true }, { success: true, preserved: false }, { success: false, preserved: true }, { success: false, preserved: false }]), { success: 0.5, preserved: 0.5, both: 0.25 });
    const m = (ok: boolean, alignment = 20, preservation = 0.9): ScoredOutcome => ({ success: ok, preserved: true, alignment, preservation });
    // 4 edits, etas 0.7 / 0.9, seeds 0 / 1.
    const results: CaseResult[] = [0, 1, 2, 3].map((id) => ({
      id, kind: id < 2 ? 'color' : 'shape', target: 'a blue circle', inputAlignment: 5,
      seconds: { imagicTrain: 1, imagicRender: 1, sdedit: 1, ddimInversion: 1 },
      imagic: {
        '0.70/0': m(id === 0, 10), '0.90/0': m(id < 3, 30), // seed 0: eta 0.9 right for 0, 1, 2
        '0.70/1': m(false, 10), '0.90/1': m(id === 3, 30),  // only seed 1 has edit 3 right
      },
      auto: id === 1 ? { eta: 0.7, seed: 0 } : { eta: 0.9, seed: id === 3 ? 1 : 0 }, // the rule missed edit 1
      sdedit: { '0.30': m(id === 0), '0.60': m(id < 2) },
      ddimInversion: { empty: m(false), caption: m(id === 2) },
    }));
    const s = summarize(results, { etas: [0.7, 0.9], seeds: [0, 1], sdeditStrengths: [0.3, 0.6] });
    assert.equal(s.bestFixedEta, 0.9);
    assert.equal(s.bestStrength, 0.6);
    assert.equal(s.bestInversion, 'caption');
    assert.equal(s.methods['Imagic, automatic eta and seed (default)']!.both, 0.75);
    assert.equal(s.methods['Imagic, automatic eta and seed (default)']!.perKind.color.both, 0.5);
    assert.equal(s.methods['Imagic, best fixed eta (0.90, seed 0)']!.both, 0.75);
    assert.equal(s.methods['SDEdit, best strength (0.60)']!.both, 0.5);
    assert.equal(s.methods["DDIM inversion, best source (input's caption)"]!.both, 0.25);
    assert.equal(s.methods['Imagic, per-edit best eta (seed 0; upper bound)']!.both, 0.75);
    assert.equal(s.methods['Imagic, any candidate (upper bound)']!.both, 1);
    assert.equal(s.ruleHitRate, 0.75, 'right in 3 of the 4 edits that had a right candidate');
    assert.equal(s.imagicByEta['0.70']!.both, 0.25);
    assert.equal(s.imagicByEta['0.70']!.alignment, 10);
    assert.ok(Math.abs(s.imagicByEta['0.70']!.preservation - 0.9) < 1e-12);
    assert.equal(s.methods['Imagic, automatic eta and seed (default)']!.alignment, 25, 'mean CLIP score of the chosen candidates');
  });
});
