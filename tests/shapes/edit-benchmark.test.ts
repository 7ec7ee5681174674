// The edit benchmark's fixed cases (20 of each kind, one attribute changed, the target naming it)
// and its summary arithmetic.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCaption } from '../../src/shapes/captions.js';
import { EDIT_KINDS, editBenchmarkCases, rates, summarize, type CaseResult } from '../../src/shapes/edit-benchmark.js';

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

  test('rates and the swept eta', () => {
    assert.deepEqual(rates([{ success: true, preserved: true }, { success: true, preserved: false }, { success: false, preserved: true }, { success: false, preserved: false }]), { success: 0.5, preserved: 0.5, both: 0.25 });
    const ok = { success: true, preserved: true }, no = { success: false, preserved: true };
    const results: CaseResult[] = [0, 1, 2, 3].map((id) => ({
      id, kind: 'color', target: 'a blue circle', seconds: { imagic: 1, sdedit: 1, ddimInversion: 1 },
      imagic: { '0.70': id === 0 ? ok : no, '0.90': id < 3 ? ok : no, '1.10': id < 3 ? ok : no },
      sdedit: id === 0 ? ok : no, ddimInversion: no,
    }));
    const s = summarize(results, 0.7, [0.7, 0.9, 1.1]);
    assert.equal(s.sweptEta, 0.9, 'the best eta; ties go to the smaller');
    assert.equal(s.methods['Imagic (eta 0.7)']!.both, 0.25);
    assert.equal(s.methods['Imagic (swept eta 0.9)']!.both, 0.75);
    assert.equal(s.methods['Imagic (swept eta 0.9)']!.perKind.color.both, 0.75);
    assert.equal(s.methods.SDEdit!.both, 0.25);
    assert.equal(s.methods['DDIM inversion']!.both, 0);
    assert.deepEqual(s.imagicByEta, { '0.70': 0.25, '0.90': 0.75, '1.10': 0.75 });
  });
});
