// How long a custom layout with a token mask takes to build (issue 18: < 20 ms for 65,536
// tokens and 16 heads). The layout is a causal sliding window of W = 512 tokens at blocks of
// 64 (1,024 × 1,024 blocks, 9 key blocks a row: 147,456 entries over the 16 heads), given as
//   onnx: ONNX Runtime SparseAttention's CSR (causal by definition) + the window edge as a
//         block mask ({ blocks, select });
//   flex: FlexAttention's BlockMask lists (H = 1) as create_block_mask gives them: partial
//         blocks in kv_indices, full ones in full_kv_indices; the 2 partial masks (diagonal,
//         window edge) as block masks;
//   pairs: the same Flex lists with the mask as a predicate per token pair (the convenience
//         form: called for the 2 partial blocks × 4,096 pairs of a row; at 65,536 tokens that
//         is 134M calls, past CUSTOM_CALLS_MAX, so it runs at --pair-tokens, default 16,384).
// Timed separately: the constructor (reads and checks the lists) and plan() (builds all 16
// heads' block tables, the custom layout's build). Each sample uses a fresh instance (plans
// are cached per instance); forms interleave (A B C C B A…); median and min of --reps.
// Then what each path derives from those tables before its first kernel, from src/ bundled
// by esbuild (internal, not exported): the CPU kernel's mask records (maskRecords) and the
// GPU's meta words (buildMeta: CSR and mask bits of the 16 layouts) — both read the distinct
// masks only, no call of the user's functions.
//   node bench/masks.mjs [--reps 9] [--tokens 65536] [--pair-tokens 16384]
import { build } from 'esbuild';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SparseAttention } from '../dist/index.js';
import { parseArgs } from './lib.mjs';

const args = parseArgs();
const reps = Number(args.reps ?? 9);
const tokens = Number(args.tokens ?? 65536);
const pairTokens = Number(args['pair-tokens'] ?? 16384);
const [heads, d, bs, W] = [16, 64, 64, 512];

function window(nCtx) {
  const nB = nCtx / bs;
  const span = W / bs; // key blocks qb - span .. qb
  // ONNX Runtime CSR: one layout, row qb lists max(0, qb - span) .. qb.
  const rowPtr = new Int32Array(nB + 1);
  for (let qb = 0; qb < nB; qb++) rowPtr[qb + 1] = rowPtr[qb] + Math.min(qb, span) + 1;
  const cols = new Int32Array(rowPtr[nB]);
  for (let qb = 0; qb < nB; qb++) for (let kb = Math.max(0, qb - span), e = rowPtr[qb]; kb <= qb; kb++) cols[e++] = kb;
  // Flex, as create_block_mask gives it: kv_num_blocks / kv_indices [1, 1, nB(, nB)] the
  // partial blocks (diagonal, window edge), full_kv_* the blocks between (entries past each
  // count unused).
  const [kvNumBlocks, fullKvNumBlocks] = [new Int32Array(nB), new Int32Array(nB)];
  const [kvIndices, fullKvIndices] = [new Int32Array(nB * nB), new Int32Array(nB * nB)];
  for (let qb = 0; qb < nB; qb++) {
    for (let kb = Math.max(0, qb - span); kb <= qb; kb++) {
      if (kb === qb || kb === qb - span) kvIndices[qb * nB + kvNumBlocks[qb]++] = kb;
      else fullKvIndices[qb * nB + fullKvNumBlocks[qb]++] = kb;
    }
  }
  const flex = { kvNumBlocks, kvIndices, fullKvNumBlocks, fullKvIndices, shape: [1, 1, nB, nB], blockSize: bs };
  // Block masks: 0 = lower triangle (diagonal block), 1 = strict upper triangle (the block
  // W / bs back, where j > i - W cuts it).
  const tril = new Uint8Array(bs * bs);
  const edge = new Uint8Array(bs * bs);
  for (let r = 0; r < bs; r++) for (let c = 0; c < bs; c++) (c <= r ? tril : edge)[r * bs + c] = 1;
  const select = (withDiagonal) => (_h, qb, keyBlocks, ids) => {
    for (let t = 0; t < keyBlocks.length; t++) {
      if (keyBlocks[t] === qb - span) ids[t] = 1;
      else if (withDiagonal && keyBlocks[t] === qb) ids[t] = 0;
    }
  };
  return {
    onnx: { layout: { blockRowIndices: rowPtr, blockColIndices: cols }, mask: { blocks: [tril, edge], select: select(false) } },
    flex: { layout: flex, mask: { blocks: [tril, edge], select: select(true) } },
    pairs: { layout: flex, mask: (_h, i, j) => j <= i && j > i - W },
  };
}

function sample(options, nCtx) {
  const t0 = performance.now();
  const attn = new SparseAttention(heads, 'custom', undefined, bs, { ...options, backend: 'wasm', threads: 1 });
  const t1 = performance.now();
  const plan = attn.plan([1, nCtx, heads * d]);
  const t2 = performance.now();
  attn.dispose();
  return { construct: t1 - t0, plan: t2 - t1, blocks: plan.blocksVisited };
}

const forms = [['onnx', tokens], ['flex', tokens], ['pairs', pairTokens]];
const setups = new Map(forms.map(([f, n]) => [f, window(n)[f]]));
const times = new Map(forms.map(([f]) => [f, []]));
for (const [f, n] of forms) sample(setups.get(f), n); // warm-up (JIT)
for (let r = 0; r < reps; r++) {
  const order = r % 2 === 0 ? forms : [...forms].reverse();
  for (const [f, n] of order) times.get(f).push(sample(setups.get(f), n));
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; ${heads} heads, blocks of ${bs}, window ${W}; ${reps} samples each, interleaved`);
for (const [f, n] of forms) {
  const s = times.get(f);
  const c = s.map((x) => x.construct);
  const p = s.map((x) => x.plan);
  const tot = s.map((x) => x.construct + x.plan);
  console.log(
    `${f.padEnd(5)} ${String(n).padStart(6)} tokens, ${s[0].blocks} block pairs: constructor median ${med(c).toFixed(2)} ms, ` +
      `plan (build) median ${med(p).toFixed(2)} ms (min ${Math.min(...p).toFixed(2)}), total median ${med(tot).toFixed(2)} ms`,
  );
}

// The paths' own tables, from src/ (a bundle of the internal modules).
const root = fileURLToPath(new URL('..', import.meta.url));
const bundle = await build({
  stdin: {
    contents: [
      "export { makeConfig } from './src/config.ts';",
      "export { buildGeometry, buildPlan } from './src/plan.ts';",
      "export { maskRecords } from './src/backends/wasm/masks.ts';",
      "export { buildMeta } from './src/backends/webgpu/marshal.ts';",
    ].join('\n'),
    resolveDir: root,
    loader: 'ts',
  },
  bundle: true, format: 'esm', platform: 'node', write: false, logLevel: 'error',
});
const file = join(mkdtempSync(join(tmpdir(), 'masks-bench-')), 'internal.mjs');
writeFileSync(file, bundle.outputFiles[0].text);
const internal = await import(pathToFileURL(file).href);
for (const f of ['onnx', 'flex']) {
  const o = setups.get(f);
  const config = internal.makeConfig(heads, 'custom', undefined, bs, { ...o, backend: 'wasm' });
  const cpu = [];
  const gpu = [];
  const geo = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    const geometry = internal.buildGeometry(config, tokens);
    const t1 = performance.now();
    // fresh layouts each sample: both caches are keyed by layout
    let records = 0;
    for (const l of geometry.layouts) records += internal.maskRecords(l.csr()).length;
    const t2 = performance.now();
    const plan = internal.buildPlan(config, geometry, [1, tokens, heads * d], null);
    const t3 = performance.now();
    const meta = internal.buildMeta(plan, { b0: 0, b1: 1, h0: 0, h1: heads });
    const t4 = performance.now();
    geo.push(t1 - t0);
    cpu.push(t2 - t1);
    gpu.push(t4 - t3);
    if (r === 0) console.log(`${f}: ${geometry.layouts.length} layouts, ${geometry.layouts.reduce((n, l) => n + l.masks.length, 0)} distinct masks, CPU mask records ${records * 4} bytes, GPU meta ${meta.words.length * 4} bytes`);
  }
  console.log(`${f.padEnd(5)} internal: layouts built median ${med(geo).toFixed(2)} ms; CPU mask records median ${med(cpu).toFixed(3)} ms; GPU meta (CSR + mask bits) median ${med(gpu).toFixed(2)} ms`);
}
