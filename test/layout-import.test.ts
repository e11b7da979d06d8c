// Custom layouts imported from ONNX Runtime's SparseAttention CSR and FlexAttention's
// BlockMask lists, and token masks given per block ({ blocks, select }): each checked against
// a dense mask written out by hand from the format's definition, against onnxruntime-node's
// own SparseAttention (its CPU provider runs the op) where bench/peers has it installed, and
// for bad values, against the clear errors they must give. Numerical conformance of every
// path is in the conformance suites (test/cases.ts has these forms too).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ArgumentError, SparseAttention, attentionReference, referenceMask } from '../dist/index.js';
import { expectClose, randomTensor } from './helpers.js';
import { CI, recordSkip } from './optional.js';

/** The dense [nB][nB] block mask a CSR lists (rows of rowPtr, padding past the last pointer ignored). */
function denseFromCsr(rowPtr: number[], cols: number[], nB: number): number[][] {
  return Array.from({ length: nB }, (_, qb) => {
    const row = new Array<number>(nB).fill(0);
    for (let e = rowPtr[qb]; e < rowPtr[qb + 1]; e++) row[cols[e]] = 1;
    return row;
  });
}

/** referenceMask over nCtx × nCtx for one head, as 0/1 strings per query. */
function maskRows(heads: number, options: object, bs: number, nCtx: number, h: number): string[] {
  const allowed = referenceMask(heads, 'custom', undefined, bs, options as never, nCtx);
  return Array.from({ length: nCtx }, (_, i) => Array.from({ length: nCtx }, (_, j) => (allowed(h, i, j) ? '1' : '0')).join(''));
}

// The example of onnxruntime's docs/ContribOperators.md (com.microsoft.SparseAttention): two
// layouts of 4 × 4 blocks and their CSR, block_col_indices right-padded with -1.
const ORT_DOC = {
  dense: [
    [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 1, 1, 1]],
    [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 1, 1]],
  ],
  blockColIndices: [[0, 0, 1, 1, 2, 1, 2, 3, -1], [0, 0, 1, 0, 1, 2, 0, 2, 3]],
  blockRowIndices: [[0, 1, 3, 5, 8], [0, 1, 3, 6, 9]],
};

describe("ONNX Runtime SparseAttention's CSR", () => {
  it("the docs' example: every head's mask is its layout (h % 2), causal inside the diagonal block", () => {
    const bs = 8;
    const nCtx = 32;
    const layout = { blockRowIndices: ORT_DOC.blockRowIndices, blockColIndices: ORT_DOC.blockColIndices };
    for (let h = 0; h < 4; h++) {
      const blocks = ORT_DOC.dense[h % 2];
      const expected = Array.from({ length: nCtx }, (_, i) =>
        Array.from({ length: nCtx }, (_, j) => (blocks[Math.floor(i / bs)][Math.floor(j / bs)] && j <= i ? '1' : '0')).join(''));
      expect(maskRows(4, { layout }, bs, nCtx, h)).toEqual(expected);
    }
    // The CSR is the dense layout: the hand expansion agrees with the docs' matrices.
    for (let l = 0; l < 2; l++) expect(denseFromCsr(ORT_DOC.blockRowIndices[l], ORT_DOC.blockColIndices[l], 4)).toEqual(ORT_DOC.dense[l]);
  });

  it('flat arrays with numLayouts equal the nested form; a shorter call uses the top-left blocks', async () => {
    const flat = { blockRowIndices: Int32Array.from(ORT_DOC.blockRowIndices.flat()), blockColIndices: Int32Array.from(ORT_DOC.blockColIndices.flat()), numLayouts: 2 };
    const nested = { blockRowIndices: ORT_DOC.blockRowIndices, blockColIndices: ORT_DOC.blockColIndices };
    for (const h of [0, 1]) expect(maskRows(2, { layout: flat }, 8, 20, h)).toEqual(maskRows(2, { layout: nested }, 8, 20, h));
    const shape: [number, number, number] = [1, 20, 2 * 4];
    const [q, k, v] = [1, 2, 3].map((s) => randomTensor(shape, s, 2));
    const attn = new SparseAttention(2, 'custom', undefined, 8, { layout: flat, backend: 'wasm', threads: 1 });
    const out = await attn.forward(q, k, v);
    expectClose(out.data, attentionReference(q, k, v, 2, 'custom', undefined, 8, { layout: nested }).data, 1e-5, 1e-4, 'flat ORT layout');
    // Allowed pairs from the plan equal the hand count of the docs' dense layouts, causal.
    const count = ORT_DOC.dense.reduce((sum, blocks) => {
      let n = 0;
      for (let i = 0; i < 20; i++) for (let j = 0; j <= i; j++) n += blocks[Math.floor(i / 8)][Math.floor(j / 8)];
      return sum + n;
    }, 0);
    expect(attn.plan(shape).allowedPairs).toBe(count);
    attn.dispose();
  });

  const peers = resolve(__dirname, '../bench/peers/node_modules/onnxruntime-node');
  const haveOrt = existsSync(peers);
  if (!haveOrt) {
    // A benchmark dependency (288 MB), not installed by npm install: the docs' example and the
    // hand expansions above check the same semantics without it. CI installs it (.ci/run).
    if (CI) throw new Error('SPARSE_ATTENTION_CI=1: onnxruntime-node must be installed in bench/peers (node scripts/setup-bench.mjs)');
    recordSkip({ what: 'onnxruntime-node SparseAttention comparison', why: 'onnxruntime-node is not installed in bench/peers (a benchmark dependency)', enable: 'node scripts/setup-bench.mjs' });
  }
  it.runIf(haveOrt)("equals onnxruntime-node's own SparseAttention (CPU provider): 2 layouts over 4 heads, GQA, nCtx past the last full block", async () => {
    const require = createRequire(resolve(__dirname, '../bench/peers/package.json'));
    const ort = require('onnxruntime-node');
    const { runSparseAttention } = await import('../bench/peers/ort-sparse-graph.mjs');
    const [heads, kvHeads, d, bs, maxBlocks] = [4, 2, 8, 16, 6];
    // Layout 0: a local band of 2 blocks plus block 0; layout 1: every other block, and a
    // row (3) without its diagonal block.
    const rows = [
      [[0], [0, 1], [0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 5]],
      [[0], [1], [0, 2], [1], [0, 2, 4], [1, 3, 5]],
    ];
    const maxNnz = Math.max(...rows.map((r) => r.flat().length));
    const rowIndices: number[] = [];
    const colIndices: number[] = [];
    for (const layout of rows) {
      let n = 0;
      rowIndices.push(0, ...layout.map((r) => (n += r.length)));
      const cols = layout.flat();
      colIndices.push(...cols, ...new Array(maxNnz - cols.length).fill(-1));
    }
    for (const nCtx of [90, 96]) {
      const q = randomTensor([1, nCtx, heads * d], 11, 2);
      const k = randomTensor([1, nCtx, kvHeads * d], 12, 2);
      const v = randomTensor([1, nCtx, kvHeads * d], 13);
      const expected = await runSparseAttention(ort, { batch: 1, nCtx, heads, kvHeads, headDim: d, blockSize: bs, maxBlocks, numLayouts: 2, maxNnz }, {
        q: q.data, k: k.data, v: v.data, rowIndices, colIndices,
      });
      const layout = { blockRowIndices: Int32Array.from(rowIndices), blockColIndices: Int32Array.from(colIndices), numLayouts: 2 };
      const attn = new SparseAttention(heads, 'custom', undefined, bs, { layout, kvHeads, backend: 'wasm', threads: 1 });
      const ours = await attn.forward(q, k, v);
      attn.dispose();
      // ORT computes in float32 (MLAS): the CPU path's tolerance against it.
      expectClose(ours.data, Float64Array.from(expected as Float32Array), 1e-5, 1e-4, `ours vs onnxruntime-node, nCtx ${nCtx}`);
      const ref = attentionReference(q, k, v, heads, 'custom', undefined, bs, { layout, kvHeads });
      expectClose(Float32Array.from(expected as Float32Array), ref.data, 1e-5, 1e-4, `onnxruntime-node vs the reference, nCtx ${nCtx}`);
    }
  });

  it('bad CSRs are clear errors', () => {
    const make = (layout: object, heads = 2) => () => new SparseAttention(heads, 'custom', undefined, 8, { layout: layout as never });
    const ok = { blockRowIndices: [0, 1, 3], blockColIndices: [0, 0, 1] };
    expect(make(ok)).not.toThrow();
    const cases: [object, RegExp, number?][] = [
      [{ ...ok, blockColIndices: [0, 0, 2] }, /options\.layout\.blockColIndices\[0\]\[2\] must be a key block 0 to 1 \(row 1 of layout 0\) \(got 2\)/],
      [{ ...ok, blockColIndices: [0, -1, 1] }, /blockColIndices\[0\]\[1\] must be a key block 0 to 1/],
      [{ ...ok, blockRowIndices: [0, 2, 1] }, /blockRowIndices\[0\]\[2\] must be at least options\.layout\.blockRowIndices\[0\]\[1\] \(2\): row pointers never decrease \(got 1\)/],
      [{ ...ok, blockRowIndices: [1, 1, 3] }, /blockRowIndices\[0\]\[0\] must be 0 \(CSR row pointers start at 0\) \(got 1\)/],
      [{ ...ok, blockRowIndices: [0, 1, 4] }, /blockRowIndices\[0\]\[2\] must be at most the length of a blockColIndices row \(3\) \(got 4\)/],
      [{ blockRowIndices: [0, 2, 3], blockColIndices: [0, 1, 1] }, /blockColIndices\[0\]\[1\] must be at most its query block 0: ONNX Runtime's SparseAttention is causal/],
      [{ blockRowIndices: [0, 1, 3], blockColIndices: [0, 1, 1] }, /row 1 of layout 0 lists key block 1 twice/],
      [{ ...ok, numLayouts: 2 }, /blockRowIndices\.length must be a multiple of numLayouts \(2\) \(got 3\)/],
      [{ blockRowIndices: [[0, 1, 3], [0, 1, 2]], blockColIndices: [[0, 0, 1]] }, /blockColIndices\.length must be 2 \(numLayouts\) \(got 1\)/],
      [{ blockRowIndices: [[0, 1, 3], [0, 1]], blockColIndices: [[0, 0, 1], [0, 1, 1]] }, /blockRowIndices\[1\]\.length must be 3/],
      [{ blockRowIndices: [[0, 1, 2], [0, 1, 2], [0, 1, 2]], blockColIndices: [[0, 1], [0, 1], [0, 1]] }, /options\.layout has 3 layouts: their number must divide heads \(2\)/],
      [{ ...ok, blockColIndices: [0, 0.5, 1] }, /blockColIndices\[1\] must be a 32-bit integer \(got 0\.5\)/],
      [{ ...ok, extra: 1 }, /options\.layout\.extra is not a key of ONNX Runtime's layout/],
      [{ blockRowIndices: [0], blockColIndices: [] }, /rows of maxBlocks \+ 1 >= 2 entries/],
    ];
    for (const [layout, message] of cases) {
      expect(make(layout)).toThrow(ArgumentError);
      expect(make(layout)).toThrow(message);
    }
    // A call longer than the layout covers.
    const attn = new SparseAttention(2, 'custom', undefined, 8, { layout: ok, backend: 'wasm' });
    expect(() => attn.plan([1, 17, 8])).toThrow(/nCtx must be at most 16 \(the custom layout covers 2 blocks of 8\) \(got 17\)/);
    attn.dispose();
  });
});

describe("FlexAttention's BlockMask lists", () => {
  // 3 query blocks × 3 key blocks of 8, per head (H = 2). Padding past each count is 7: never read.
  const flex = {
    kvNumBlocks: [1, 2, 1, /* head 1 */ 2, 0, 1],
    kvIndices: [0, 7, 7, 1, 0, 7, 2, 7, 7, /* head 1 */ 2, 0, 7, 7, 7, 7, 1, 7, 7],
    fullKvNumBlocks: [0, 0, 2, /* head 1 */ 0, 1, 1],
    fullKvIndices: [7, 7, 7, 7, 7, 7, 1, 0, 7, /* head 1 */ 7, 7, 7, 1, 7, 7, 0, 7, 7],
    shape: [1, 2, 3, 3],
  };
  const partial = [[[0], [0, 1], [2]], [[0, 2], [], [1]]];
  const full = [[[], [], [0, 1]], [[], [1], [0]]];
  const tokenMask = (h: number, i: number, j: number) => (i + 2 * j + h) % 3 !== 0;

  it('full blocks are whole; the token mask applies to the kv_indices blocks only', () => {
    const nCtx = 24;
    for (let h = 0; h < 2; h++) {
      const expected = Array.from({ length: nCtx }, (_, i) =>
        Array.from({ length: nCtx }, (_, j) => {
          const [qb, kb] = [Math.floor(i / 8), Math.floor(j / 8)];
          if (full[h][qb].includes(kb)) return '1';
          return partial[h][qb].includes(kb) && tokenMask(h, i, j) ? '1' : '0';
        }).join(''));
      expect(maskRows(2, { layout: flex, mask: tokenMask }, 8, nCtx, h)).toEqual(expected);
    }
  });

  it('without full lists every listed block is under the mask (a noop mask: whole blocks); H = 1 broadcasts', () => {
    const single = { kvNumBlocks: Int32Array.of(1, 2), kvIndices: Int32Array.of(1, 0, 0, 1), shape: [2, 2] };
    const expected = (h: number, masked: boolean) => Array.from({ length: 16 }, (_, i) =>
      Array.from({ length: 16 }, (_, j) => {
        const [qb, kb] = [Math.floor(i / 8), Math.floor(j / 8)];
        const listed = qb === 0 ? kb === 1 : true;
        return listed && (!masked || tokenMask(h, i, j)) ? '1' : '0';
      }).join(''));
    for (const h of [0, 1, 2]) {
      expect(maskRows(3, { layout: single }, 8, 16, h)).toEqual(expected(h, false));
      expect(maskRows(3, { layout: { ...single, shape: [1, 1, 2, 2] }, mask: tokenMask }, 8, 16, h)).toEqual(expected(h, true));
    }
  });

  it('forward on the CPU equals the reference (shape [H, nQB, nKB], a call shorter than the lists)', async () => {
    const layout = { ...flex, shape: [2, 3, 3], blockSize: [8, 8] };
    for (const nCtx of [24, 13]) {
      const shape: [number, number, number] = [2, nCtx, 2 * 6];
      const [q, k, v] = [4, 5, 6].map((s) => randomTensor(shape, s, 2));
      const attn = new SparseAttention(2, 'custom', undefined, 8, { layout, mask: tokenMask, backend: 'wasm', threads: 1 });
      const out = await attn.forward(q, k, v);
      attn.dispose();
      expectClose(out.data, attentionReference(q, k, v, 2, 'custom', undefined, 8, { layout, mask: tokenMask }).data, 1e-5, 1e-4, `flex nCtx ${nCtx}`);
    }
  });

  it('bad lists are clear errors', () => {
    const make = (layout: object, heads = 2, bs = 8) => () => new SparseAttention(heads, 'custom', undefined, bs, { layout: layout as never });
    expect(make(flex)).not.toThrow();
    const cases: [object, RegExp, number?, number?][] = [
      [{ ...flex, kvIndices: flex.kvIndices.map((x, i) => (i === 3 ? 3 : x)) }, /options\.layout\.kvIndices\[3\] must be a key block 0 to 2 \(got 3\)/],
      [{ ...flex, kvNumBlocks: [4, 2, 1, 2, 0, 1] }, /options\.layout\.kvNumBlocks\[0\] must be 0 to nKB \(3\) \(got 4\)/],
      [{ ...flex, kvNumBlocks: [1, 2, 1] }, /kvNumBlocks\.length must be H · nQB = 6 for shape \[1, 2, 3, 3\] \(got 3\)/],
      [{ ...flex, kvIndices: flex.kvIndices.slice(1) }, /kvIndices\.length must be H · nQB · nKB = 18/],
      [{ ...flex, fullKvIndices: flex.fullKvIndices.map((x, i) => (i === 6 ? 2 : x)) }, /head 0, query block 2; kvIndices and fullKvIndices together\) lists key block 2 twice/],
      [{ ...flex, fullKvIndices: undefined }, /fullKvNumBlocks and fullKvIndices must be given together/],
      [{ ...flex, shape: [2, 2, 3, 3] }, /shape\[0\] must be B = 1: one layout for the whole batch/],
      [{ ...flex, shape: [1, 2, 3, 3] }, /shape\[1\] must be H = 1 or heads \(3\) \(got 2\)/, 3],
      [{ ...flex, shape: [3, 3, 3, 3, 3] }, /options\.layout\.shape must be kv_indices\.shape/],
      [{ ...flex, blockSize: 128 }, /options\.layout\.blockSize must be the constructor's blocksize \(8\) on both axes \(got 128\)/],
      [{ ...flex, mask_mod: 1 }, /options\.layout\.mask_mod is not a key of a FlexAttention layout/],
    ];
    for (const [layout, message, heads] of cases) {
      expect(make(layout, heads)).toThrow(ArgumentError);
      expect(make(layout, heads)).toThrow(message);
    }
  });
});

describe('token masks per block ({ blocks, select })', () => {
  const bs = 8;
  const area = bs * bs;
  // Distinct masks: lower triangle, a checkerboard, all zeros (the entry drops), all ones.
  const blocks = [
    Uint8Array.from({ length: area }, (_, t) => ((t % bs) <= Math.floor(t / bs) ? 1 : 0)),
    Uint8Array.from({ length: area }, (_, t) => ((t + Math.floor(t / bs)) % 2)),
    new Uint8Array(area),
    new Uint8Array(area).fill(1),
  ];
  const pick = (h: number, qb: number, kb: number) => (kb === qb ? 0 : (kb + h) % 4 === 1 ? 1 : (qb + kb) % 5 === 0 ? 2 : (kb * 3 + qb) % 4 === 2 ? 3 : -1);
  const select = (h: number, qb: number, keyBlocks: Int32Array, ids: Int32Array) => keyBlocks.forEach((kb, t) => { ids[t] = pick(h, qb, kb); });
  const predicate = (h: number, i: number, j: number) => {
    const id = pick(h, Math.floor(i / bs), Math.floor(j / bs));
    return id === -1 || blocks[id][(i % bs) * bs + (j % bs)] === 1;
  };
  const layout = (h: number, qb: number, kb: number) => kb <= qb + h;

  it('equals the same mask as a predicate: masks, counts and the CPU result', async () => {
    const nCtx = 53;
    for (let h = 0; h < 2; h++) {
      expect(maskRows(2, { layout, mask: { blocks, select } }, bs, nCtx, h)).toEqual(maskRows(2, { layout, mask: predicate }, bs, nCtx, h));
    }
    const shape: [number, number, number] = [1, nCtx, 2 * 8];
    const [q, k, v] = [7, 8, 9].map((s) => randomTensor(shape, s, 2));
    const byBlock = new SparseAttention(2, 'custom', undefined, bs, { layout, mask: { blocks: Uint8Array.from(blocks.flatMap((b) => [...b])), select }, backend: 'wasm', threads: 1 });
    const byPair = new SparseAttention(2, 'custom', undefined, bs, { layout, mask: predicate, backend: 'wasm', threads: 1 });
    const [a, b] = [byBlock.plan(shape), byPair.plan(shape)];
    expect(a.allowedPairs).toBe(b.allowedPairs);
    expect(a.blocksVisited).toBe(b.blocksVisited); // all-zero masks drop their block in both
    const out = await byBlock.forward(q, k, v);
    expectClose(out.data, attentionReference(q, k, v, 2, 'custom', undefined, bs, { layout, mask: predicate }).data, 1e-5, 1e-4, 'block masks');
    byBlock.dispose();
    byPair.dispose();
  });

  it('select sees each row once with its masked key blocks, ascending and below nCtx; imports combine with it', () => {
    const seen: string[] = [];
    const flex = { kvNumBlocks: [2, 1, 2], kvIndices: [1, 0, 0, 1, 9, 9, 2, 1, 9], fullKvNumBlocks: [0, 1, 0], fullKvIndices: [9, 9, 9, 0, 9, 9, 9, 9, 9], shape: [3, 3] };
    const attn = new SparseAttention(1, 'custom', undefined, bs, {
      layout: flex,
      mask: { blocks, select: (h, qb, keyBlocks, ids) => { seen.push(`${h}:${qb}:${[...keyBlocks].join(',')}:${[...ids].join(',')}`); } },
      backend: 'wasm',
    });
    attn.plan([1, 20, 8]); // 3 blocks of 8: every listed block
    expect(seen).toEqual(['0:0:0,1:-1,-1', '0:1:1:-1', '0:2:1,2:-1,-1']);
    seen.length = 0;
    attn.plan([1, 16, 8]); // 2 blocks: row 2 and key block 2 are past the call
    expect(seen).toEqual(['0:0:0,1:-1,-1', '0:1:1:-1']);
    attn.dispose();
    // ORT's causal diagonal combines with a block mask (mask AND lower triangle).
    const onnx = { blockRowIndices: [0, 1, 3], blockColIndices: [0, 0, 1] };
    const withMask = { layout: onnx, mask: { blocks, select: (_h: number, _qb: number, kbs: Int32Array, ids: Int32Array) => ids.fill(1) } };
    const rows = maskRows(1, withMask, bs, 16, 0);
    for (let i = 0; i < 16; i++) {
      for (let j = 0; j < 16; j++) expect(rows[i][j]).toBe(j <= i && blocks[1][(i % bs) * bs + (j % bs)] === 1 ? '1' : '0');
    }
  });

  it('bad block masks are clear errors', () => {
    const make = (mask: unknown) => () => new SparseAttention(2, 'custom', undefined, bs, { layout: [[1, 0], [1, 1]], mask: mask as never, backend: 'wasm' }).plan([1, 16, 4]);
    const cases: [unknown, RegExp][] = [
      [{ blocks: new Uint8Array(65), select }, /options\.mask\.blocks\.length must be a multiple of blocksize² \(64\) \(got 65\)/],
      [{ blocks: [new Uint8Array(63)], select }, /options\.mask\.blocks\[0\] must be a Uint8Array of blocksize² \(64\) bytes/],
      [{ blocks: [new Uint8Array(64).fill(2)], select }, /options\.mask\.blocks\[0\]\[0\] must be 0 or 1 \(got 2\)/],
      [{ blocks: 3, select }, /options\.mask\.blocks must be a Uint8Array/],
      [{ blocks }, /options\.mask\.select must be a function \(head, queryBlock, keyBlocks, ids\) => void/],
      [{ blocks, select, other: 1 }, /options\.mask\.other is not a key of a block mask/],
      [{ blocks, select: (_h: number, _q: number, _k: Int32Array, ids: Int32Array) => { ids[0] = 4; } }, /options\.mask\.select\(head 0, queryBlock 0\): ids\[0\] \(key block 0\) must be -1 \(whole block\) or a mask index 0 to 3 \(got 4\)/],
      [{ blocks, select: () => { throw new Error('boom'); } }, /options\.mask\.select\(head 0, queryBlock 0\) threw: boom/],
      [null, /options\.mask must be a function \(head, query, key\) => boolean or block masks \{ blocks, select \} \(got null\)/],
    ];
    for (const [mask, message] of cases) {
      expect(make(mask)).toThrow(ArgumentError);
      expect(make(mask)).toThrow(message);
    }
  });
});
