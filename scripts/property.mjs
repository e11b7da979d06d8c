// Nightly-style property test: `node scripts/property.mjs --cases 2000 --seed 1` runs
// cases seed, seed+1, … (scripts/lib/property.mjs) on every CPU path, or with --gpu on the
// WebGPU path (scripts/lib/paths.mjs)
// against the float64 reference. A failure prints its seed and configuration;
// `node scripts/property.mjs --replay <seed>` reruns that one case. Needs `npm run build`.
// Options: --budget N (reference work per case, default 3e7), --json FILE (summary), --mods
// (score modifiers and lse on half the cases, as test/property.test.ts runs them).
import { writeFileSync } from 'node:fs';
import * as lib from '../dist/index.js';
import { cpuPaths, gpuPaths } from './lib/paths.mjs';
import { checkCase, describeCase, makeCase } from './lib/property.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const replay = opt('replay', undefined);
const seed0 = Number(replay ?? opt('seed', '1'));
const cases = replay !== undefined ? 1 : Number(opt('cases', '2000'));
const budget = Number(opt('budget', '3e7'));
// --gpu: the WebGPU path instead of the CPU paths (needs an adapter; lavapipe works).
const paths = args.includes('--gpu') ? gpuPaths() : cpuPaths(lib);

// Keep one instance per path alive so that engines and worker pools persist between cases.
const keep = paths.filter((p) => !p.sync).map((p) => new lib.SparseAttention(1, 'all', undefined, 8, { ...p.options, threads: 3 }));
const one = { data: new Float32Array(4), shape: [1, 1, 4] };
for (const a of keep) await a.forward(one, one, one);

const t0 = performance.now();
const stats = { cases: 0, runs: 0, failures: [], modes: {}, maxNCtx: 0, maxHeadDim: 0, withKeyLengths: 0, emptyRows: 0, tokenMasks: 0 };
for (let i = 0; i < cases; i++) {
  const c = makeCase(seed0 + i, budget, { mods: args.includes('--mods') });
  if (replay !== undefined) console.log(`replaying seed ${c.seed}: ${describeCase(c)}`);
  const failures = await checkCase(lib, c, paths);
  stats.cases++;
  stats.runs += paths.length;
  const key = `${c.mode}${c.mode === 'custom' ? '' : c.causal ? ' causal' : ' bidirectional'}`;
  stats.modes[key] = (stats.modes[key] ?? 0) + 1;
  stats.maxNCtx = Math.max(stats.maxNCtx, c.nCtx);
  stats.maxHeadDim = Math.max(stats.maxHeadDim, c.headDim);
  if (c.keyLengths) stats.withKeyLengths++;
  if (c.emptyRows) stats.emptyRows++;
  if (c.tokenMask) stats.tokenMasks++;
  for (const f of failures) {
    stats.failures.push(f);
    console.error(`FAIL ${f}\n  replay: node scripts/property.mjs --replay ${c.seed}${budget !== 3e7 ? ` --budget ${budget}` : ''}${args.includes('--mods') ? ' --mods' : ''}`);
  }
  if ((i + 1) % 100 === 0) console.log(`${i + 1}/${cases} cases, ${stats.failures.length} failures, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
keep.forEach((a) => a.dispose());
const summary = {
  command: `node scripts/property.mjs ${args.join(' ')}`.trim(),
  node: process.version,
  paths: paths.map((p) => p.name),
  seeds: `${seed0}..${seed0 + cases - 1}`,
  ...stats,
  failures: stats.failures.length,
  seconds: Math.round((performance.now() - t0) / 1000),
};
console.log(JSON.stringify(summary, null, 2));
const json = opt('json', undefined);
if (json) writeFileSync(json, JSON.stringify({ ...summary, failureList: stats.failures }, null, 2) + '\n');
process.exitCode = stats.failures.length ? 1 : 0;
