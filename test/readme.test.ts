// README examples run as written. Every ```js and ```html block of README.md is taken out
// and, by the runtime it is written for:
// - Node (imports 'sparse-attention'): run with this Node as an ES module in a scratch
//   project whose node_modules/sparse-attention links to this checkout (so "exports" picks
//   dist/index.js); it must exit 0 with nothing on stderr but Dawn's notices on a software
//   adapter (no unhandled error, no hang).
// - Deno (imports 'npm:sparse-attention'): run with Deno (npm package `deno`) with the
//   permissions its comment line gives, the npm: specifier mapped to dist/index.js by an
//   import map (no registry).
// - Cloudflare Workers (`export default { fetch }`): bundled as wrangler does (conditions
//   workerd, worker, browser: dist/workerd.js, kernels as .wasm modules), served by workerd,
//   and sent one request; its answer is checked against the float64 reference.
// - Browser (```html): its module script is bundled for the browser (must resolve to
//   dist/browser.js) and syntax-checked, not run: test/runtimes/browser.test.ts runs the same
//   calls in chromium where it is installed.
// A block the test cannot place fails the test, so a new example cannot go unchecked.
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import * as esbuild from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { attentionReference } from '../dist/index.js';
import { expectClose } from './helpers.js';
import { ROOT, runCommand } from './runtimes/harness.js';

interface Block {
  lang: 'js' | 'html';
  line: number;
  code: string;
}

const README = readFileSync(`${ROOT}README.md`, 'utf8');
const blocks: Block[] = [...README.matchAll(/^```(js|html)\n([\s\S]*?)^```$/gm)].map((m) => ({
  lang: m[1] as 'js' | 'html',
  line: README.slice(0, m.index).split('\n').length,
  code: m[2],
}));

type Kind = 'node' | 'deno' | 'workerd' | 'browser';
function kindOf(b: Block): Kind | null {
  if (b.lang === 'html') return 'browser';
  if (/from 'npm:sparse-attention'/.test(b.code)) return 'deno';
  if (/^export default \{/m.test(b.code) && /\bfetch\(request\)/.test(b.code)) return 'workerd';
  if (/from 'sparse-attention'/.test(b.code)) return 'node';
  return null;
}

const scratch = mkdtempSync(join(tmpdir(), 'sparse-attention-readme-'));
mkdirSync(join(scratch, 'node_modules'));
symlinkSync(ROOT, join(scratch, 'node_modules', 'sparse-attention'), 'dir');
writeFileSync(join(scratch, 'package.json'), JSON.stringify({ type: 'module', private: true }));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const file = (b: Block, ext: string) => join(scratch, `readme-line-${b.line}.${ext}`);
/** stderr without Dawn's notices on a software adapter (printed when 'auto' asks lavapipe for a device). */
const stderrBeyondDawn = (stderr: string) => stderr.split('\n').filter((l) => l && !/^Warning: \w+ artificially reduced from/.test(l)).join('\n');

describe('README.md code blocks', () => {
  it('every ```js / ```html block is one the test runs or checks', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(6);
    expect(blocks.filter((b) => !kindOf(b)).map((b) => `README.md line ${b.line}`)).toEqual([]);
  });

  for (const b of blocks.filter((x) => kindOf(x) === 'node')) {
    it(`line ${b.line}: runs in Node ${process.versions.node} as written`, async () => {
      writeFileSync(file(b, 'mjs'), b.code);
      const r = await runCommand(process.execPath, [file(b, 'mjs')], { cwd: scratch, timeoutMs: 120_000 });
      expect(stderrBeyondDawn(r.stderr), `README.md line ${b.line}\n${r.stdout}`).toBe('');
      expect(r.code, `README.md line ${b.line}\n${r.stdout}`).toBe(0);
    });
  }

  for (const b of blocks.filter((x) => kindOf(x) === 'deno')) {
    it(`line ${b.line}: runs in Deno as written, npm:sparse-attention mapped to dist/index.js`, async () => {
      const command = /^\/\/ deno run (.*) main\.js$/m.exec(b.code);
      expect(command, `README.md line ${b.line}: the block's first line gives its deno run command`).not.toBeNull();
      writeFileSync(file(b, 'js'), b.code);
      writeFileSync(join(scratch, 'import-map.json'), JSON.stringify({ imports: { 'npm:sparse-attention': new URL('dist/index.js', `file://${ROOT}`).href } }));
      const args = ['run', '--no-lock', ...command![1].split(' '), `--import-map=${join(scratch, 'import-map.json')}`, file(b, 'js')];
      const r = await runCommand(`${ROOT}node_modules/.bin/deno`, args, {
        cwd: scratch,
        timeoutMs: 120_000,
        env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
      });
      expect(r.stderr, `README.md line ${b.line}\n${r.stdout}`).toBe('');
      expect(r.code, `README.md line ${b.line}\n${r.stdout}`).toBe(0);
    });
  }

  for (const b of blocks.filter((x) => kindOf(x) === 'workerd')) {
    it(`line ${b.line}: bundled as wrangler does, served by workerd, answers one request right`, async () => {
      const dir = mkdtempSync(join(scratch, 'workerd-'));
      writeFileSync(join(dir, 'src.mjs'), b.code);
      const built = await esbuild.build({
        entryPoints: [join(dir, 'src.mjs')],
        bundle: true,
        format: 'esm',
        platform: 'neutral',
        target: 'es2022',
        conditions: ['workerd', 'worker', 'browser'],
        external: ['*.wasm'],
        outfile: join(dir, 'worker.js'),
        metafile: true,
        logLevel: 'silent',
        nodePaths: [join(scratch, 'node_modules')],
      });
      expect(Object.keys(built.metafile.inputs).some((f) => f.endsWith('dist/workerd.js'))).toBe(true);
      for (const k of ['relaxed', 'simd']) copyFileSync(`${ROOT}dist/bsattn.${k}.wasm`, join(dir, `bsattn.${k}.wasm`));
      writeFileSync(join(dir, 'config.capnp'), WORKERD_CONFIG);
      const { port, stop } = await serveWorkerd(dir);
      try {
        // The block's instance: SparseAttention(4, 'strided', 16), blocksize 32.
        const shape = [1, 40, 16];
        let seed = 3;
        const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
        const [q, k, v] = [0, 1, 2].map(() => Array.from({ length: 40 * 16 }, rnd));
        const res = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: JSON.stringify({ q, k, v, shape }) });
        expect(res.status).toBe(200);
        const { out } = (await res.json()) as { out: number[] };
        const t = (a: number[]) => ({ data: Float32Array.from(a), shape });
        expectClose(Float32Array.from(out), attentionReference(t(q), t(k), t(v), 4, 'strided', 16).data, 1e-5, 1e-4, `README.md line ${b.line} in workerd`);
      } finally {
        stop();
      }
    });
  }

  for (const b of blocks.filter((x) => kindOf(x) === 'browser')) {
    it(`line ${b.line}: the page's module script bundles for the browser (dist/browser.js); run by the browser suite, not here`, async () => {
      const script = /<script type="module">([\s\S]*?)<\/script>/.exec(b.code);
      expect(script, `README.md line ${b.line}: a <script type="module">`).not.toBeNull();
      const map = /<script type="importmap">([\s\S]*?)<\/script>/.exec(b.code);
      expect(JSON.parse(map![1]).imports['sparse-attention']).toBe('/node_modules/sparse-attention/dist/browser.js');
      writeFileSync(file(b, 'mjs'), script![1]);
      const built = await esbuild.build({
        entryPoints: [file(b, 'mjs')],
        bundle: true,
        format: 'esm',
        platform: 'browser',
        target: 'es2022',
        write: false,
        metafile: true,
        logLevel: 'silent',
        nodePaths: [join(scratch, 'node_modules')],
      });
      expect(Object.keys(built.metafile.inputs).some((f) => f.endsWith('dist/browser.js'))).toBe(true);
    });
  }
});

const WORKERD_CONFIG = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .readmeWorker)],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "main")],
);
const readmeWorker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "bsattn.relaxed.wasm", wasm = embed "bsattn.relaxed.wasm"),
    (name = "bsattn.simd.wasm", wasm = embed "bsattn.simd.wasm"),
  ],
  compatibilityDate = "2025-06-01",
);
`;

/** Starts workerd on `dir`/config.capnp; resolves with the port it listens on (reported on fd 3). */
function serveWorkerd(dir: string): Promise<{ port: number; stop: () => void }> {
  const proc: ChildProcess = spawn(`${ROOT}node_modules/.bin/workerd`, ['serve', 'config.capnp', '--control-fd=3'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stdout!.on('data', (d) => (log += d));
  proc.stderr!.on('data', (d) => (log += d));
  const stop = () => {
    if (proc.exitCode === null) proc.kill('SIGTERM');
  };
  return new Promise((resolve, reject) => {
    let control = '';
    // A hang guard: workerd listens within a second or two here.
    const timer = setTimeout(() => (stop(), reject(new Error(`workerd did not start listening in 60 s:\n${log}`))), 60_000);
    proc.on('exit', (code) => (clearTimeout(timer), reject(new Error(`workerd exited with ${code}:\n${log}`))));
    (proc.stdio[3] as Readable).on('data', (d) => {
      control += d;
      for (const line of control.split('\n')) {
        if (!line.startsWith('{') || !line.endsWith('}')) continue;
        const event = JSON.parse(line) as { event: string; socket?: string; port?: number };
        if (event.event === 'listen' && event.socket === 'http') {
          clearTimeout(timer);
          resolve({ port: event.port!, stop });
        }
      }
    });
  });
}
