// Soak: `node scripts/soak.mjs --calls 10000 --seed 1` runs that many forward /
// forwardSync calls of mixed seeded shapes (scripts/lib/property.mjs, every mode, threads
// 1..3, every CPU path, createTensor in/out among them) half through a few long-lived instances,
// half through an LRU of at most 12 instances (created and disposed all along), checks every 50th result against the float64
// reference, and samples WebAssembly memory, live workers, engines and process RSS every
// --every calls. Then it disposes everything and checks that no engine or worker is left.
// It fails (exit 1) on a wrong result or when memory, workers or RSS keep growing after
// warm-up. Needs `npm run build`. --json FILE writes the samples.
import { writeFileSync } from 'node:fs';
import * as lib from '../dist/index.js';
import { cpuPaths } from './lib/paths.mjs';
import { caseInputs, caseOptions, describeCase, firstMismatch, makeCase, residentCopies, rng } from './lib/property.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const calls = Number(opt('calls', '10000'));
const seed0 = Number(opt('seed', '1'));
const every = Number(opt('every', String(Math.max(50, calls / 20))));
const CHECK_EVERY = 50;
const MAX_INSTANCES = 12;
const { SparseAttention, attentionReference } = lib;
// The bundle's test-only hooks (src/testing.ts): live workers, engines, memory.
const T = globalThis[Symbol.for('sparse-attention.testing')].get(SparseAttention);
const paths = cpuPaths(lib);
const r = rng(seed0);

const LONG_LIVED = [['all', undefined, 32], ['local', 64, 32], ['strided', 16, 16], ['fixed', 64, 16]];
const longLived = new Map(); // path:mode → instance, kept for the whole run
const live = new Map(); // config key → instance, least recently used first
let created = 0;
function instanceFor(c, path) {
  const o = caseOptions(c);
  const key = JSON.stringify([path.name, c.mode, c.heads, c.L, c.bs, c.causal, c.numVerts, c.vertsize, c.threads, c.mode === 'custom' ? c.seed : 0]);
  let a = live.get(key);
  if (a) live.delete(key);
  else {
    a = new SparseAttention(c.heads, c.mode, c.L, c.bs, { ...o, ...path.options, threads: path.sync ? undefined : c.threads });
    created++;
    if (live.size >= MAX_INSTANCES) {
      const [oldKey, old] = live.entries().next().value;
      live.delete(oldKey);
      old.dispose();
    }
  }
  live.set(key, a);
  return a;
}

const MiB = 2 ** 20;
const sample = (call) => {
  const engines = T.engines();
  const m = process.memoryUsage();
  return {
    call,
    wasmMiB: +(engines.reduce((n, e) => n + e.memoryBytes, 0) / MiB).toFixed(1),
    engines: engines.length,
    poolWorkers: engines.reduce((n, e) => n + e.workers, 0),
    workersAlive: T.counters.workersAlive,
    instances: live.size + longLived.size,
    rssMiB: +(m.rss / MiB).toFixed(1),
    heapMiB: +(m.heapUsed / MiB).toFixed(1),
    arrayBuffersMiB: +(m.arrayBuffers / MiB).toFixed(1),
  };
};

const t0 = performance.now();
const samples = [sample(0)];
const failures = [];
let checked = 0;
for (let i = 1; i <= calls; i++) {
  // self-attention shapes only (the property cases' inference dimensions are drawn after
  // their shape: dropping them leaves the shapes this soak has always mixed)
  let c = makeCase(seed0 * 1_000_003 + i, 3e7);
  c = { ...c, kvHeads: undefined, nQ: undefined, cacheChunks: undefined, rollback: undefined, seqLengths: undefined };
  const path = paths[Math.floor(r() * paths.length)];
  let attn;
  if (r() < 0.5) {
    // Half the calls: one of a few long-lived instances (a server's), shapes still mixed.
    const [mode, L, bs] = LONG_LIVED[Math.floor(r() * LONG_LIVED.length)];
    c = { ...c, mode, L, bs, causal: true, heads: 2, numVerts: undefined, vertsize: undefined, layoutKind: undefined };
    const key = `${path.name}:${mode}`;
    if (!longLived.has(key)) {
      longLived.set(key, new SparseAttention(2, mode, L, bs, { ...path.options, threads: 2 }));
      created++;
    }
    attn = longLived.get(key);
  } else {
    attn = instanceFor(c, path);
  }
  const { q, k, v } = caseInputs(c);
  const fo = { keyLengths: c.keyLengths };
  let out;
  try {
    if (path.resident) {
      // createTensor() tensors in and out, released after the call: the engine's tensor
      // regions churn with every shape and must be reused, not grow memory without bound
      const [rq, rk, rv, ro] = residentCopies(attn, q.shape, [q, k, v, null]);
      await attn.forward(rq, rk, rv, { ...fo, out: ro.data });
      out = { data: ro.data.slice() };
      [rq, rk, rv, ro].forEach((t) => attn.releaseTensor(t));
    } else {
      out = path.sync ? attn.forwardSync(q, k, v, fo) : await attn.forward(q, k, v, fo);
    }
  } catch (e) {
    failures.push(`call ${i} ${path.name} seed ${c.seed} ${describeCase(c)}: threw ${e.stack ?? e}`);
    continue;
  }
  if (i % CHECK_EVERY === 0) {
    const ref = attentionReference(q, k, v, c.heads, c.mode, c.L, c.bs, caseOptions(c), fo).data;
    const bad = firstMismatch(out.data, ref, path.atol, path.rtol);
    if (bad) failures.push(`call ${i} ${path.name} seed ${c.seed} ${describeCase(c)}: ${bad}`);
    checked++;
  }
  if (i % every === 0) {
    samples.push(sample(i));
    if (!args.includes('--quiet')) console.log(JSON.stringify(samples.at(-1)));
  }
}
const seconds = (performance.now() - t0) / 1000;
for (const a of [...live.values(), ...longLived.values()]) a.dispose();
live.clear();
longLived.clear();
// Worker exits are reported asynchronously.
for (let n = 0; n < 100 && T.counters.workersAlive > 0; n++) await new Promise((res) => setTimeout(res, 20));
const after = sample(calls);

// Bounded: after the first quarter (warm-up: the largest shapes seen so far set the memory),
// wasm memory and workers may not pass the maximum of the whole run by much, and RSS may grow
// by at most 64 MiB from the quarter mark to the end.
const warm = samples.filter((s) => s.call >= calls / 4);
const max = (xs, f) => Math.max(...xs.map(f));
const rssGrowth = warm.length ? warm.at(-1).rssMiB - warm[0].rssMiB : 0;
const problems = [...failures];
if (rssGrowth > 64) problems.push(`RSS grew by ${rssGrowth.toFixed(1)} MiB after warm-up`);
if (max(samples, (s) => s.workersAlive) > 3 * 2 + 3) problems.push(`up to ${max(samples, (s) => s.workersAlive)} workers alive (2 engines × 3 threads expected at most)`);
if (after.engines !== 0 || after.workersAlive !== 0) problems.push(`after dispose: ${after.engines} engines, ${after.workersAlive} workers alive`);
const summary = {
  command: `node scripts/soak.mjs ${args.join(' ')}`.trim(),
  node: process.version,
  calls,
  checkedAgainstReference: checked,
  instancesCreated: created,
  workersStarted: T.counters.workersStarted,
  poolsStarted: T.counters.poolsStarted,
  seconds: +seconds.toFixed(1),
  maxWasmMiB: max(samples, (s) => s.wasmMiB),
  maxWorkersAlive: max(samples, (s) => s.workersAlive),
  rssMiB: { start: samples[0].rssMiB, quarter: warm[0]?.rssMiB, end: samples.at(-1).rssMiB, max: max(samples, (s) => s.rssMiB), afterDispose: after.rssMiB },
  rssGrowthAfterWarmupMiB: +rssGrowth.toFixed(1),
  afterDispose: after,
  problems,
};
console.log(JSON.stringify(summary, null, 2));
const json = opt('json', undefined);
if (json) writeFileSync(json, JSON.stringify({ ...summary, samples }, null, 2) + '\n');
process.exitCode = problems.length ? 1 : 0;
// No process.exit(): the process must end by itself once everything is disposed.
