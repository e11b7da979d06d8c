// A Cloudflare-style worker in workerd (npm package `workerd`). The worker script imports
// the package by name and is bundled with esbuild under the conditions wrangler uses
// ('workerd', 'worker', 'browser'), which picks dist/workerd.js; its kernel imports stay
// .wasm modules that config.capnp declares as CompiledWasm. workerd serves the worker twice,
// plain and with nodejs_compat (where `process` exists), on 127.0.0.1 only, on ports it
// picks (reported through --control-fd). The test posts every smoke case to both and
// checks the answers against the float64 reference computed here.
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import * as esbuild from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, WORKERD_BUNDLE, checkCase } from './harness.js';
import { SMOKE_CASES, base64ToF32, caseInputs, f32ToBase64 } from './fixtures/cases.mjs';

const WORKERD = `${ROOT}node_modules/.bin/workerd`;

let dir = '';
let child: ChildProcess | null = null;
const bases: Record<string, string> = {};
const SOCKETS = ['http', 'http-compat'];
let log = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sparse-attention-workerd-'));
  const built = await esbuild.build({
    ...WORKERD_BUNDLE,
    conditions: [...WORKERD_BUNDLE.conditions],
    external: [...WORKERD_BUNDLE.external],
    entryPoints: [`${ROOT}test/runtimes/workerd/worker.mjs`],
    outfile: join(dir, 'worker.js'),
  });
  // The package name must have resolved to the workerd entry, with no embedded kernels.
  expect(Object.keys(built.metafile.inputs)).toContain('dist/workerd.js');
  expect(Object.keys(built.metafile.inputs)).not.toContain('dist/index.js');
  copyFileSync(`${ROOT}test/runtimes/workerd/config.capnp`, join(dir, 'config.capnp'));
  for (const b of ['relaxed', 'simd']) copyFileSync(`${ROOT}dist/bsattn.${b}.wasm`, join(dir, `bsattn.${b}.wasm`));

  const proc = spawn(WORKERD, ['serve', 'config.capnp', '--control-fd=3'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  child = proc;
  proc.stdout!.on('data', (d) => (log += d));
  proc.stderr!.on('data', (d) => (log += d));
  await new Promise<void>((resolve, reject) => {
    let control = '';
    const timer = setTimeout(() => reject(new Error(`workerd did not start listening in 20 s:\n${log}`)), 20_000);
    proc.on('exit', (code) => reject(new Error(`workerd exited with ${code}:\n${log}`)));
    (proc.stdio[3] as Readable).on('data', (d) => {
      control += d;
      for (const line of control.split('\n')) {
        if (!line.startsWith('{') || !line.endsWith('}')) continue;
        const event = JSON.parse(line) as { event: string; socket?: string; port?: number };
        if (event.event === 'listen' && event.socket) bases[event.socket] = `http://127.0.0.1:${event.port}`;
      }
      if (SOCKETS.every((s) => bases[s])) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}, 60_000);

afterAll(() => {
  if (child && child.exitCode === null) child.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function post(socket: string, body: unknown): Promise<{ detail: string; reason: string; out: string; error?: string }> {
  const res = await fetch(`${bases[socket]}/run`, { method: 'POST', body: JSON.stringify(body) });
  const json = (await res.json()) as { detail: string; reason: string; out: string; error?: string };
  if (!res.ok) throw new Error(`workerd answered ${res.status}: ${json.error}\n${log}`);
  return json;
}

describe.each(SOCKETS)('workerd, socket %s', (socket) => {
  it('kernels arrive as imported modules (relaxed and simd)', async () => {
    const info = (await (await fetch(`${bases[socket]}/info`)).json()) as { variants: string[]; process: boolean; processVersionsNode: string | null };
    expect(info.variants).toEqual(['relaxed', 'simd']);
    expect(info.process).toBe(socket === 'http-compat');
  });

  for (const c of SMOKE_CASES) {
    it(`fetch handler runs mode '${c.mode}' single-threaded, even when 4 threads are asked`, async () => {
      const { q, k, v } = caseInputs(c);
      const answer = await post(socket, {
        mode: c.mode, L: c.L, bs: c.bs, heads: c.heads, shape: q.shape, options: { threads: 4 },
        q: f32ToBase64(q.data), k: f32ToBase64(k.data), v: f32ToBase64(v.data),
      });
      expect(answer.detail).toBe('wasm relaxed, 1 thread');
      checkCase(`workerd (${socket})`, c, base64ToF32(answer.out));
    });
  }
});
