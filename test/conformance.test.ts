// One conformance suite, every CPU path, against the float64 reference.
import { afterAll, describe, expect, it } from 'vitest';
import { SparseAttention } from '../dist/index.js';
import { wasmPaths } from './backends.js';
import { conformanceCases } from './cases.js';
import { describeCase, expectClose, inputs, reference } from './helpers.js';

const cases = conformanceCases();

describe.each(wasmPaths())('$name', (path) => {
  const instances: SparseAttention[] = [];
  afterAll(() => instances.forEach((a) => a.dispose()));

  it.each(cases.map((c) => [describeCase(c), c] as const))('%s', async (_name, c) => {
    const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { ...c.options, ...path.options });
    instances.push(attn);
    const { q, k, v } = inputs(c);
    const out = path.sync
      ? attn.forwardSync(q, k, v, { keyLengths: c.keyLengths })
      : await attn.forward(q, k, v, { keyLengths: c.keyLengths });
    expect(out.shape).toEqual(q.shape);
    expectClose(out.data, reference(c), path.atol, path.rtol, `${path.name} ${describeCase(c)}`);
    expect(attn.lastRun?.backend).toBe('wasm');
  });
});
