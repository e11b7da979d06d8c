// A browser: Debian's chromium, headless, driven by playwright-core (never `playwright
// install`), with a fresh user-data-dir, on test/runtimes/browser/index.html served by a
// tiny http server on 127.0.0.1. index.html maps the package name to dist/ with an import
// map; bundled.html runs the same script bundled by esbuild for the browser, which must
// resolve the 'browser' condition (dist/browser.js, no node: imports). Served plainly a
// page is not cross-origin isolated, so the CPU path must run on one thread even when
// threads are asked; served with COOP/COEP it is, and must run on 2 module Workers. The
// core entry with init({ url }) runs too. Without chromium (CHROMIUM_PATH, else
// /usr/bin/chromium) the chromium suites skip and the run's last line says so, unless
// SPARSE_ATTENTION_CI=1 or SPARSE_ATTENTION_REQUIRE_BROWSER=1 (test/optional.ts).
import { accessSync, constants, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import * as esbuild from 'esbuild';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROWSER_ENABLE, REQUIRE_BROWSER, recordSkip } from '../optional.js';
import { ROOT, checkResults, checkZeroCopy, type RuntimeReport } from './harness.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
/** Why chromium cannot be launched from CHROMIUM, or '' when it can. */
const missing = (() => {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return '';
  } catch (e) {
    return `no chromium at ${CHROMIUM} (${(e as NodeJS.ErrnoException).code})`;
  }
})();
// Not installed: skipped (the run's last line says so) unless required (SPARSE_ATTENTION_CI=1).
if (missing && !REQUIRE_BROWSER) recordSkip({ what: 'browser suite', why: missing, enable: BROWSER_ENABLE });

describe('chromium', () => {
  it('is installed (SPARSE_ATTENTION_CI=1 or SPARSE_ATTENTION_REQUIRE_BROWSER=1)', (ctx) => {
    if (!REQUIRE_BROWSER) ctx.skip('checked only with SPARSE_ATTENTION_CI=1 (as .ci/run sets it) or SPARSE_ATTENTION_REQUIRE_BROWSER=1; without it a machine with no chromium skips the browser suite and the run ends with a line saying how to enable it');
    expect(missing, `${missing}: ${BROWSER_ENABLE}`).toBe('');
  });
});
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-quic',
];
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.map': 'application/json',
};

/** Serves /dist/ and /test/runtimes/ from the project, /bundle/ from `bundle`; with COOP/COEP when isolated. */
function serve(isolated: boolean): Promise<Server> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    let file = '';
    if (path === '/') file = join(ROOT, 'test/runtimes/browser/index.html');
    else if (path === '/bundle/') file = join(ROOT, 'test/runtimes/browser/bundled.html');
    else if (path.startsWith('/bundle/')) file = join(bundle, path.slice('/bundle/'.length));
    else if (path.startsWith('/dist/') || path.startsWith('/test/runtimes/')) file = join(ROOT, path);
    if (!file || !existsSync(file) || !TYPES[extname(file)]) {
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

const url = (s: Server, path: string) => `http://127.0.0.1:${(s.address() as AddressInfo).port}${path}`;

let plain: Server;
let isolated: Server;
let context: BrowserContext;
let profile = '';
let bundle = '';
let bundledInputs: string[] = [];

beforeAll(async () => {
  // What a browser bundler does with the package: esbuild, platform 'browser'. The worker
  // is found at new URL('./worker.js', import.meta.url): copied beside the bundle.
  bundle = mkdtempSync(join(tmpdir(), 'sparse-attention-bundle-'));
  const built = await esbuild.build({
    entryPoints: [`${ROOT}test/runtimes/browser/page.mjs`],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile: join(bundle, 'page.js'),
    metafile: true,
    logLevel: 'silent',
  });
  bundledInputs = Object.keys(built.metafile.inputs);
  copyFileSync(`${ROOT}dist/worker.js`, join(bundle, 'worker.js'));
});

afterAll(() => {
  if (bundle) rmSync(bundle, { recursive: true, force: true });
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
    await page.waitForFunction(() => 'smokeResult' in window || 'smokeError' in window, null, { timeout: 60_000 });
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

const version = (r: PageReport) => r.userAgent.match(/Chrome\/[\d.]+/)?.[0] ?? r.userAgent;

describe.runIf(!missing)('chromium (headless)', () => {
  beforeAll(async () => {
    plain = await serve(false);
    isolated = await serve(true);
    profile = mkdtempSync(join(tmpdir(), 'sparse-attention-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS });
  });

  afterAll(async () => {
    await context?.close();
    plain?.close();
    isolated?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  describe.each([
    ['import map', '/'],
    ['esbuild bundle', '/bundle/'],
  ])('%s', (_, page) => {
    it('served plainly: not cross-origin isolated, CPU path on one thread', async () => {
      const r = await runPage(url(plain, `${page}?threads=2`));
      expect(r.crossOriginIsolated).toBe(false);
      const best = r.variants[0];
      for (const x of r.results) expect(x.detail).toBe(`wasm ${best}, 1 thread`);
      expect(r.webWorkers).toEqual([]);
      checkResults(`${version(r)} ${page} plain`, r.results);
      checkZeroCopy(`${version(r)} ${page} plain`, r.zeroCopy, false); // no shared memory: ordinary arrays
    });

    it('served with COOP/COEP: cross-origin isolated, CPU path on 2 module Workers', async () => {
      const r = await runPage(url(isolated, `${page}?threads=2`));
      expect(r.crossOriginIsolated).toBe(true);
      const best = r.variants[0];
      for (const x of r.results) expect(x.detail).toBe(`wasm ${best}, 2 threads`);
      expect(r.webWorkers).toEqual(Array(8).fill('module'));
      checkResults(`${version(r)} ${page} isolated`, r.results);
      checkZeroCopy(`${version(r)} ${page} isolated`, r.zeroCopy, true);
    });

    it('the core entry with init({ url }): kernels fetched from dist/', async () => {
      const r = await runPage(url(plain, `${page}?entry=core`));
      expect(r.variants).toEqual(['relaxed', 'simd']);
      for (const x of r.results) expect(x.detail).toBe('wasm relaxed, 1 thread');
      checkResults(`${version(r)} ${page} core+init`, r.results);
    });
  });
});

describe('esbuild bundle for the browser', () => {
  it("resolves the 'browser' condition: dist/browser.js and dist/core.browser.js", () => {
    expect(bundledInputs).toContain('dist/browser.js');
    expect(bundledInputs).toContain('dist/core.browser.js');
    expect(bundledInputs.filter((f) => /^dist\/(index|core)\.js$/.test(f))).toEqual([]);
  });
});
