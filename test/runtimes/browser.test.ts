// A browser: Debian's chromium, headless, driven by playwright-core (never `playwright
// install`), with a fresh user-data-dir, on test/runtimes/browser/index.html served by a
// tiny http server on 127.0.0.1. The page maps the package name to dist/ with an import
// map. Served plainly the page is not cross-origin isolated, so the CPU path must run on
// one thread even when threads are asked; served with COOP/COEP it is, and must run on
// 2 module Workers. A third page uses dist/core.js with init({ url }).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, checkResults, type RuntimeReport } from './harness.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-quic',
];
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.map': 'application/json',
};

/** Serves /dist/ and /test/runtimes/ from the project; with COOP/COEP when isolated. */
function serve(isolated: boolean): Promise<Server> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = join(ROOT, path === '/' ? 'test/runtimes/browser/index.html' : path);
    const allowed = path === '/' || path.startsWith('/dist/') || path.startsWith('/test/runtimes/');
    if (!allowed || !existsSync(file) || !TYPES[extname(file)]) {
      res.writeHead(404).end();
      return;
    }
    const headers: Record<string, string> = { 'content-type': TYPES[extname(file)], 'cache-control': 'no-store' };
    if (isolated) {
      headers['cross-origin-opener-policy'] = 'same-origin';
      headers['cross-origin-embedder-policy'] = 'require-corp';
    }
    res.writeHead(200, headers).end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const url = (s: Server, query: string) => `http://127.0.0.1:${(s.address() as AddressInfo).port}/?${query}`;

let plain: Server;
let isolated: Server;
let context: BrowserContext;
let profile = '';

beforeAll(async () => {
  plain = await serve(false);
  isolated = await serve(true);
  profile = mkdtempSync(join(tmpdir(), 'sparse-attention-chromium-'));
  context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS });
}, 60_000);

afterAll(async () => {
  await context?.close();
  plain?.close();
  isolated?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

interface PageReport extends RuntimeReport {
  userAgent: string;
  crossOriginIsolated: boolean;
}

async function runPage(address: string): Promise<PageReport> {
  const page = await context.newPage();
  const console: string[] = [];
  page.on('console', (m) => console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console.push(`pageerror: ${e.message}`));
  try {
    await page.goto(address);
    await page.waitForFunction(() => 'smokeResult' in window || 'smokeError' in window, null, { timeout: 20_000 });
    const { result, error } = await page.evaluate(() => {
      const w = window as unknown as { smokeResult?: unknown; smokeError?: string };
      return { result: w.smokeResult, error: w.smokeError };
    });
    if (error) throw new Error(`${address}: ${error}\n${console.join('\n')}`);
    return result as PageReport;
  } finally {
    await page.close();
  }
}

describe('chromium (headless)', () => {
  it('served plainly: not cross-origin isolated, CPU path on one thread', async () => {
    const r = await runPage(url(plain, 'threads=2'));
    expect(r.userAgent).toMatch(/Chrome\/\d+/);
    expect(r.crossOriginIsolated).toBe(false);
    const best = r.variants[0];
    for (const x of r.results) expect(x.detail).toBe(`wasm ${best}, 1 thread`);
    expect(r.webWorkers).toEqual([]);
    checkResults(`chromium ${r.userAgent.match(/Chrome\/[\d.]+/)?.[0]} plain`, r.results);
  });

  it('served with COOP/COEP: cross-origin isolated, CPU path on 2 module Workers', async () => {
    const r = await runPage(url(isolated, 'threads=2'));
    expect(r.crossOriginIsolated).toBe(true);
    const best = r.variants[0];
    for (const x of r.results) expect(x.detail).toBe(`wasm ${best}, 2 threads`);
    expect(r.webWorkers).toEqual(Array(8).fill('module'));
    checkResults(`chromium ${r.userAgent.match(/Chrome\/[\d.]+/)?.[0]} isolated`, r.results);
  });

  it('dist/core.js with init({ url }): kernels fetched from dist/', async () => {
    const r = await runPage(url(plain, 'entry=core'));
    expect(r.variants).toEqual(['relaxed', 'simd']);
    for (const x of r.results) expect(x.detail).toBe('wasm relaxed, 1 thread');
    checkResults(`chromium ${r.userAgent.match(/Chrome\/[\d.]+/)?.[0]} core+init`, r.results);
  });
});
