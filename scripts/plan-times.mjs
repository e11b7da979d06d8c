// Time of plan() for very large shapes, each case in its own Node process (a layout too large
// for V8 aborts the process, which a try/catch cannot see): `node scripts/plan-times.mjs
// [--timeout 30] [--heap 512] [--json file]`. Prints, per case, the ms of the first plan()
// call (cold: includes compiling the code it runs) and, when that took < 5 s, the median of
// 21 more on fresh instances; or how the child ended (killed at the timeout, crashed with its
// exit code and the error line of stderr). Run `npm run build` first: it imports dist/.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SHAPES = [[1, 2 ** 21, 64], [2 ** 31, 8, 8], [1, 2 ** 30, 8]];
const MODES = [['all'], ['local', 128], ['strided', 128], ['fixed', 128]];

if (process.argv[2] === '--child') {
  const [mode, L, shape] = JSON.parse(process.argv[3]);
  const lib = await import('../dist/index.js');
  const attn = new lib.SparseAttention(1, mode, L ?? undefined, 32, { backend: 'wasm' });
  const t0 = performance.now();
  const p = attn.plan(shape);
  const ms = performance.now() - t0;
  // then the median of 21 more calls on fresh instances (no cached geometry), JIT warm
  const times = [];
  for (let i = 0; i < 21 && ms < 5000; i++) {
    const again = new lib.SparseAttention(1, mode, L ?? undefined, 32, { backend: 'wasm' });
    const t = performance.now();
    again.plan(shape);
    times.push(performance.now() - t);
    again.dispose();
  }
  const warm = times.sort((a, b) => a - b)[times.length >> 1];
  process.stdout.write(JSON.stringify({ ms, warm, allowedPairs: p.allowedPairs, blocksVisited: p.blocksVisited, visitedFlops: p.visitedFlops }));
  attn.dispose();
} else {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  const timeout = Number(arg('--timeout', 30));
  const heap = arg('--heap', null);
  const rows = [];
  for (const shape of SHAPES) {
    for (const [mode, L] of MODES) {
      const args = [...(heap ? [`--max-old-space-size=${heap}`] : []), fileURLToPath(import.meta.url), '--child', JSON.stringify([mode, L ?? null, shape])];
      const t0 = performance.now();
      const r = spawnSync(process.execPath, args, { timeout: timeout * 1000, encoding: 'utf8', maxBuffer: 1 << 20 });
      const wall = performance.now() - t0;
      let result;
      if (r.status === 0) result = JSON.parse(r.stdout);
      else if (r.signal === 'SIGTERM' && wall >= timeout * 1000) result = { killed: `> ${timeout} s (killed)` };
      else result = { crashed: `exit ${r.status ?? r.signal}: ${(r.stderr.trim().split('\n').find((l) => /error|Error/.test(l)) ?? r.stderr.trim().split('\n').at(-1) ?? '').slice(0, 120)}` };
      const row = { mode: L ? `${mode} L=${L}` : mode, shape: `[${shape.map((x) => (x >= 2 ** 20 ? `2^${Math.log2(x)}` : x)).join(', ')}]`, ...result };
      rows.push(row);
      const warm = result.warm !== undefined ? `, then ${result.warm.toFixed(3)} ms (median of 21)` : '';
      const what = result.ms !== undefined ? `${result.ms.toFixed(2)} ms first${warm} (pairs ${result.allowedPairs}, blocks ${result.blocksVisited})` : result.killed ?? result.crashed;
      console.log(`${row.mode.padEnd(14)} ${row.shape.padEnd(18)} ${what}`);
    }
  }
  const out = arg('--json', null);
  if (out) writeFileSync(out, JSON.stringify({ node: process.version, heap, timeout, rows }, null, 2));
}
