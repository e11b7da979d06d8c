// Options are checked, never ignored (issue 15, defect 6): an unknown key names the nearest
// valid one, an option of the next version is refused until it lands, every numeric option
// has a range, and layout entries and layout/mask results are 0/1 or booleans only. Each
// rejection has the right class and code and names the argument, the value and the
// expectation; the constructor and the instance stay usable afterwards.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ArgumentError, SparseAttention, SparseAttentionError, UnsupportedError } from '../dist/index.js';
import { checkKeys, nearestName, NOT_YET_OPTIONS, OPTION_KEYS } from '../src/config.js';
// checkKeys is tested from src/, whose error classes are not dist's (same names and codes).
import * as src from '../src/errors.js';
import { expectClose, inputs, reference, type Case } from './helpers.js';

type Options = ConstructorParameters<typeof SparseAttention>[4];
const make = (o: unknown, mode = 'all', L?: number, bs = 16) =>
  () => new SparseAttention(2, mode as 'all', L, bs, o as Options);

/** Asserts that fn throws an error of class cls (a subclass of base) with code, whose message matches. */
function expectError(
  fn: () => unknown,
  cls: new (...a: never[]) => Error,
  code: string,
  message: RegExp,
  base: new (...a: never[]) => Error = SparseAttentionError,
): SparseAttentionError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${message} to be thrown`).toBeInstanceOf(cls);
  expect(err).toBeInstanceOf(base);
  expect((err as SparseAttentionError).code).toBe(code);
  expect((err as Error).message).toMatch(message);
  expect((err as Error).message).toMatch(/^SparseAttention: /);
  return err as SparseAttentionError;
}

/** A valid construction and call still work (run after each group of rejections). */
async function stillWorks(): Promise<void> {
  const c: Case = { mode: 'local', L: 5, bs: 8, batch: 1, nCtx: 19, heads: 2, headDim: 4, options: { causal: false } };
  const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { ...c.options, backend: 'wasm', threads: 2 });
  const { q, k, v } = inputs(c);
  expectClose((await attn.forward(q, k, v)).data, reference(c), 1e-5, 1e-4, 'after rejected options');
  attn.dispose();
}

const VALID = OPTION_KEYS.join(', ');

describe('unknown option keys', () => {
  const typos: [string, Record<string, unknown>, string][] = [
    ['thread', { thread: 4 }, 'threads'],
    ['casual', { casual: false }, 'causal'],
    ['Threads (case)', { Threads: 2 }, 'threads'],
    ['backends', { backends: 'wasm' }, 'backend'],
    ['wasm_variant', { wasm_variant: 'simd' }, 'wasmVariant'],
    ['numverts', { numverts: 1 }, 'numVerts'],
    ['maks (transposition)', { maks: () => true }, 'mask'],
    ['webGPU', { webGPU: {} }, 'webgpu'],
  ];
  it.each(typos)('%s: ArgumentError naming the key, the nearest name and the valid ones', (_name, o, near) => {
    const key = Object.keys(o)[0];
    const msg = new RegExp(`options\\.${key} is not an option; did you mean '${near}'\\? \\(valid: ${VALID}\\)`);
    expectError(make(o), ArgumentError, 'ERR_ARGUMENT', msg);
  });

  it('a key close to nothing: no guess, the valid names', () => {
    const e = expectError(make({ temperature: 0.7 }), ArgumentError, 'ERR_ARGUMENT', /options\.temperature is not an option \(valid: causal, kvHeads, backend/);
    expect(e.message).not.toMatch(/did you mean/);
  });

  it('an unknown key is an error even with an undefined value, and among valid ones', () => {
    expectError(make({ thread: undefined }), ArgumentError, 'ERR_ARGUMENT', /options\.thread is not an option; did you mean 'threads'/);
    expectError(make({ backend: 'wasm', threads: 2, casual: true }), ArgumentError, 'ERR_ARGUMENT', /options\.casual is not an option; did you mean 'causal'/);
  });

  it('options must be a plain object: arrays and non-objects are refused', () => {
    expectError(make([]), ArgumentError, 'ERR_ARGUMENT', /options must be an object or undefined \(got \[\]\)/);
    expectError(make('wasm'), ArgumentError, 'ERR_ARGUMENT', /options must be an object or undefined \(got 'wasm'\)/);
  });

  it('options.webgpu: unknown keys name the nearest; an unknown kernel variant names the nearest variant', () => {
    expectError(make({ webgpu: { subgroup: false } }), ArgumentError, 'ERR_ARGUMENT',
      /options\.webgpu\.subgroup is not an option; did you mean 'subgroups'\? \(valid: subgroups, timestamps, maxBindingBytes, /);
    expectError(make({ webgpu: { maxBindingByte: 4096 } }), ArgumentError, 'ERR_ARGUMENT', /options\.webgpu\.maxBindingByte is not an option; did you mean 'maxBindingBytes'/);
    expectError(make({ webgpu: { variant: 'bsattn_fwd_f32_q64_k64_qtile_subgroups' } }), ArgumentError, 'ERR_ARGUMENT',
      /options\.webgpu\.variant must be a kernel variant's name \(src\/backends\/webgpu\/variants\.ts\); did you mean 'bsattn_fwd_f32_q64_k64_qtile__subgroups'\? \(got 'bsattn_fwd_f32_q64_k64_qtile_subgroups'\)/);
    expectError(make({ webgpu: [] }), ArgumentError, 'ERR_ARGUMENT', /options\.webgpu must be an object or undefined \(got \[\]\)/);
  });

  it('every documented key is accepted (the README table and OPTION_KEYS agree)', async () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const table = readme.slice(readme.indexOf('### Options'), readme.indexOf('### Automatic path choice'));
    const documented = [...table.matchAll(/^\| ((?:`\w+`(?:, )?)+) \|/gm)].flatMap((m) => m[1].split(', ').map((k) => k.slice(1, -1)));
    expect(documented.sort()).toEqual([...OPTION_KEYS].sort());
    // every key at once, each with a valid value
    const attn = new SparseAttention(2, 'custom', undefined, 8, {
      backend: 'wasm', device: undefined, threads: 2, numVerts: undefined, vertsize: undefined, layout: [[1]],
      mask: () => true, wasmVariant: 'scalar', dtype: 'float32', webgpu: { subgroups: false, timestamps: false, maxBindingBytes: 1 << 20, variant: 'bsattn_fwd_f32_q32_k32__plain', scanV: true },
    });
    attn.dispose();
    await stillWorks();
  });
});

describe('the round-2 options', () => {
  it('are all implemented: none is refused as "not supported yet"', () => {
    expect(NOT_YET_OPTIONS).toEqual([]);
  });
  it('undefined (the default) is accepted; a misspelling is an ArgumentError naming the option', async () => {
    new SparseAttention(2, 'all', undefined, 16, { softcap: undefined, dtype: undefined } as Options).dispose();
    expectError(make({ dType: 'float16' }), ArgumentError, 'ERR_ARGUMENT', /options\.dType is not an option; did you mean 'dtype'\?/);
    expectError(make({ softCap: 30 }), ArgumentError, 'ERR_ARGUMENT', /options\.softCap is not an option; did you mean 'softcap'\?/);
    await stillWorks();
  });
});

describe('numeric ranges', () => {
  const bad: [string, unknown, RegExp][] = [
    ['threads 1e6', { threads: 1e6 }, /options\.threads must be at most 64 \(each worker costs ~8\.5 MiB and ~60 ms to start; more than the cores buys nothing\) \(got 1000000\)/],
    ['threads 65', { threads: 65 }, /options\.threads must be at most 64 .*\(got 65\)/],
    ['threads Infinity', { threads: Infinity }, /options\.threads must be a positive integer \(got Infinity\)/],
    ['threads 1.5', { threads: 1.5 }, /options\.threads must be a positive integer \(got 1\.5\)/],
    ['threads NaN', { threads: NaN }, /options\.threads must be a positive integer \(got NaN\)/],
    ['threads "4"', { threads: '4' }, /options\.threads must be a positive integer \(got '4'\)/],
    ['maxBindingBytes 15', { webgpu: { maxBindingBytes: 15 } }, /options\.webgpu\.maxBindingBytes must be from 16 \(one vec4<f32>\) to 2\^32 bytes \(got 15\)/],
    ['maxBindingBytes 2^32 + 1', { webgpu: { maxBindingBytes: 2 ** 32 + 1 } }, /options\.webgpu\.maxBindingBytes must be from 16 .* to 2\^32 bytes \(got 4294967297\)/],
    ['maxBindingBytes 0', { webgpu: { maxBindingBytes: 0 } }, /options\.webgpu\.maxBindingBytes must be a positive integer \(got 0\)/],
    ['maxBindingBytes 1024.5', { webgpu: { maxBindingBytes: 1024.5 } }, /options\.webgpu\.maxBindingBytes must be a positive integer \(got 1024\.5\)/],
    ['variant 42', { webgpu: { variant: 42 } }, /options\.webgpu\.variant must be a kernel variant's name \(src\/backends\/webgpu\/variants\.ts\) \(got 42\)/],
  ];
  it.each(bad)('%s', (_name, o, message) => {
    expectError(make(o), ArgumentError, 'ERR_ARGUMENT', message);
  });
  it('the bounds themselves are accepted; then a valid instance works', async () => {
    for (const o of [{ threads: 1 }, { threads: 64 }, { webgpu: { maxBindingBytes: 16 } }, { webgpu: { maxBindingBytes: 2 ** 32 } }]) {
      new SparseAttention(2, 'all', undefined, 16, o).dispose(); // construction only: no worker starts
    }
    await stillWorks();
  });
  it("causal with mode 'custom' is refused (it would be ignored)", () => {
    for (const causal of [true, false]) {
      expectError(make({ causal, layout: [[1]] }, 'custom'), ArgumentError, 'ERR_ARGUMENT',
        new RegExp(`options\\.causal must be undefined for mode 'custom' \\(the layout and mask decide what is allowed\\) \\(got ${causal}\\)`));
    }
  });
});

describe('layout entries: 0/1 or booleans only', () => {
  const bad: [string, unknown, RegExp][] = [
    ["'1' (a string)", [[1, '1'], [0, 1]], /options\.layout\[0\]\[1\] must be 0, 1, true or false \(got '1'\)/],
    ["'0' (a string)", [[1, 0], ['0', 1]], /options\.layout\[1\]\[0\] must be 0, 1, true or false \(got '0'\)/],
    ['2', [[1, 0], [0, 2]], /options\.layout\[1\]\[1\] must be 0, 1, true or false \(got 2\)/],
    ['NaN', [[NaN, 0], [0, 1]], /options\.layout\[0\]\[0\] must be 0, 1, true or false \(got NaN\)/],
    ['null', [[1, null], [0, 1]], /options\.layout\[0\]\[1\] must be 0, 1, true or false \(got null\)/],
    ['an object', [[1, 0], [{}, 1]], /options\.layout\[1\]\[0\] must be 0, 1, true or false \(got an object\)/],
    // eslint-disable-next-line no-sparse-arrays
    ['a hole', [[1, , ], [0, 1]], /options\.layout\[0\]\[1\] must be 0, 1, true or false \(got undefined\)/],
    ['0.5 in a Float32Array', [Float32Array.of(1, 0.5), Float32Array.of(0, 1)], /options\.layout\[0\]\[1\] must be 0, 1, true or false \(got 0\.5\)/],
    ['255 in a Uint8Array', [Uint8Array.of(1, 0), Uint8Array.of(255, 1)], /options\.layout\[1\]\[0\] must be 0, 1, true or false \(got 255\)/],
    ['per head: layout[1][0][1] = 2', [[[1, 0], [1, 1]], [[1, 2], [1, 1]]], /options\.layout\[1\]\[0\]\[1\] must be 0, 1, true or false \(got 2\)/],
  ];
  it.each(bad)('%s', (_name, layout, message) => {
    expectError(make({ layout }, 'custom', undefined, 8), ArgumentError, 'ERR_ARGUMENT', message);
  });

  it('numbers, booleans and typed arrays of 0/1 give the same result', async () => {
    const base: Case = { mode: 'custom', bs: 8, batch: 1, nCtx: 20, heads: 2, headDim: 4, options: { layout: [[1, 0, 0], [1, 1, 0], [0, 1, 1]] } };
    const ref = reference(base);
    const forms = [
      [[true, false, false], [true, true, false], [false, true, true]],
      [Uint8Array.of(1, 0, 0), Uint8Array.of(1, 1, 0), Uint8Array.of(0, 1, 1)],
      [[1, false, -0], [true, 1, 0], [0, true, 1]],
    ];
    for (const layout of forms) {
      const attn = new SparseAttention(2, 'custom', undefined, 8, { layout, backend: 'wasm', threads: 1 });
      const { q, k, v } = inputs(base);
      expectClose((await attn.forward(q, k, v)).data, ref, 1e-5, 1e-4, `layout ${JSON.stringify(layout)}`);
      attn.dispose();
    }
  });
});

describe('layout and mask functions: results 0/1 or booleans only', () => {
  const c: Case = { mode: 'custom', bs: 8, batch: 1, nCtx: 20, heads: 2, headDim: 4 };
  const { q, k, v } = inputs(c);
  const shape = q.shape;
  // Each misbehaves at one call while `bad` is set; the same instance must work once it is
  // cleared (a fresh instance per case: a geometry that was built is cached and not rebuilt).
  let bad: unknown = null;
  const layout = (h: number, qb: number, kb: number) => (bad !== null && h === 1 && qb === 2 && kb === 1 ? bad : kb <= qb);
  const mask = (h: number, i: number, j: number) => (bad !== null && h === 1 && i === 17 && j === 9 ? bad : (i + j + h) % 3 !== 0);
  const blocks = [[1, 0, 0], [1, 1, 0], [1, 1, 1]];

  const values: [string, unknown, string][] = [
    ["'false'", 'false', "'false'"],
    ["'true'", 'true', "'true'"],
    ['2', 2, '2'],
    ['-1', -1, '-1'],
    ['undefined', undefined, 'undefined'],
    ['NaN', NaN, 'NaN'],
    ['an object', {}, 'an object'],
  ];
  it.each(values)('layout function returning %s: ArgumentError naming the call and the value; the instance recovers', async (_n, value, shown) => {
    const attn = new SparseAttention(2, 'custom', undefined, 8, { layout: layout as never, backend: 'wasm', threads: 2 });
    bad = value;
    const msg = new RegExp(`options\\.layout\\(head 1, queryBlock 2, keyBlock 1\\) must return true, false, 1 or 0 \\(got ${shown}\\)`);
    expectError(() => attn.plan(shape), ArgumentError, 'ERR_ARGUMENT', msg);
    expectError(() => attn.forwardSync(q, k, v), ArgumentError, 'ERR_ARGUMENT', msg);
    await expect(attn.forward(q, k, v)).rejects.toThrow(msg);
    bad = null;
    const ref = reference({ ...c, options: { layout: layout as never } });
    expectClose((await attn.forward(q, k, v)).data, ref, 1e-5, 1e-4, 'layout function after a bad result');
    attn.dispose();
  });

  it.each(values)('mask returning %s: ArgumentError naming the call and the value; the instance recovers', async (_n, value, shown) => {
    const attn = new SparseAttention(2, 'custom', undefined, 8, { layout: blocks, mask: mask as never, backend: 'wasm', threads: 2 });
    bad = value;
    const msg = new RegExp(`options\\.mask\\(head 1, query 17, key 9\\) must return true, false, 1 or 0 \\(got ${shown}\\)`);
    expectError(() => attn.forwardSync(q, k, v), ArgumentError, 'ERR_ARGUMENT', msg);
    await expect(attn.forward(q, k, v)).rejects.toThrow(msg);
    bad = null;
    const ref = reference({ ...c, options: { layout: blocks, mask: mask as never } });
    expectClose((await attn.forward(q, k, v)).data, ref, 1e-5, 1e-4, 'mask after a bad result');
    attn.dispose();
  });

  it('a layout function returning undefined (e.g. a missing return) is refused', () => {
    const attn = new SparseAttention(2, 'custom', undefined, 8, { layout: (() => undefined) as never });
    expectError(() => attn.plan([1, 8, 8]), ArgumentError, 'ERR_ARGUMENT', /options\.layout\(head 0, queryBlock 0, keyBlock 0\) must return true, false, 1 or 0 \(got undefined\)/);
    attn.dispose();
  });

  it('a mask that throws: ArgumentError naming the call, with the exception as cause', () => {
    const boom = new RangeError('index out of range');
    const attn = new SparseAttention(2, 'custom', undefined, 8, { layout: [[1]], mask: (h, i, j) => { if (h === 1 && i === 3 && j === 2) throw boom; return true; } });
    const e = expectError(() => attn.plan([1, 8, 8]), ArgumentError, 'ERR_ARGUMENT', /options\.mask\(head 1, query 3, key 2\) threw: index out of range/);
    expect(e.cause).toBe(boom);
    attn.dispose();
  });

  it('0/1 results equal false/true results', async () => {
    const asNumbers = new SparseAttention(2, 'custom', undefined, 8, {
      layout: (_h, qb, kb) => (kb <= qb ? 1 : 0), mask: (h, i, j) => ((i + j + h) % 3 !== 0 ? 1 : 0), backend: 'wasm', threads: 1,
    });
    const ref = reference({ ...c, options: { layout: (_h, qb, kb) => kb <= qb, mask: (h, i, j) => (i + j + h) % 3 !== 0 } });
    expectClose((await asNumbers.forward(q, k, v)).data, ref, 1e-5, 1e-4, '0/1 layout and mask');
    asNumbers.dispose();
  });
});

describe('checkKeys (the facade uses it for forward options too)', () => {
  it('returns a snapshot; each property is read once', () => {
    let reads = 0;
    const o = { get threads() { reads++; return reads === 1 ? 2 : 1e6; }, causal: false };
    const snap = checkKeys('options', o, OPTION_KEYS);
    expect(snap).toEqual({ threads: 2, causal: false });
    expect(reads).toBe(1);
    // the constructor uses the snapshot: the getter's later 1e6 is never seen
    reads = 0;
    new SparseAttention(2, 'all', undefined, 16, o).dispose();
    expect(reads).toBe(1);
  });

  it('names the object it checks', () => {
    const valid = ['keyLengths', 'signal', 'out'];
    expectError(() => checkKeys('forward options', { sigal: null }, valid, ['lse']), src.ArgumentError, 'ERR_ARGUMENT',
      /forward options\.sigal is not an option; did you mean 'signal'\? \(valid: keyLengths, signal, out\)/, src.SparseAttentionError);
    expectError(() => checkKeys('forward options', { lse: new Float32Array(4) }, valid, ['lse']), src.UnsupportedError, 'ERR_UNSUPPORTED',
      /forward options\.lse is not supported yet \(got Float32Array\(4\)\)/, src.SparseAttentionError);
    expect(checkKeys('forward options', { lse: undefined, out: undefined }, valid, ['lse'])).toEqual({ out: undefined });
  });

  it('a throwing getter or proxy becomes an ArgumentError naming what was read', () => {
    const getter = { get threads(): number { throw new TypeError('nope'); } };
    expectError(() => checkKeys('options', getter, OPTION_KEYS), src.ArgumentError, 'ERR_ARGUMENT', /options\.threads could not be read \(nope\)/, src.SparseAttentionError);
    expectError(make(getter), ArgumentError, 'ERR_ARGUMENT', /options\.threads could not be read \(nope\)/);
    const proxy = new Proxy({}, { ownKeys() { throw new Error('trap'); } });
    expectError(() => checkKeys('options', proxy, OPTION_KEYS), src.ArgumentError, 'ERR_ARGUMENT', /options could not be read \(trap\)/, src.SparseAttentionError);
  });

  it('nearestName: case-insensitive edit distance with transpositions, no wild guesses', () => {
    const names = [...OPTION_KEYS, ...NOT_YET_OPTIONS];
    expect(nearestName('thread', names)).toBe('threads');
    expect(nearestName('casual', names)).toBe('causal');
    expect(nearestName('WASMVARIANT', names)).toBe('wasmVariant');
    expect(nearestName('kvheads', names)).toBe('kvHeads');
    expect(nearestName('vertSize', names)).toBe('vertsize');
    expect(nearestName('foo', names)).toBe(null);
    expect(nearestName('temperature', names)).toBe(null);
  });
});
