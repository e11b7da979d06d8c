// Shared by the runtime tests: spawn a runtime on a fixture, read its one-line JSON report,
// and check every smoke case it computed against the float64 reference of the built package.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { attentionReference } from '../../dist/index.js';
import { expectClose } from '../helpers.js';
import { SMOKE_CASES, type SmokeCase, base64ToF32, caseInputs } from './fixtures/cases.mjs';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
/** esbuild options that bundle a worker the way wrangler does for workerd (the `workerd` condition, .wasm modules kept). */
export const WORKERD_BUNDLE = {
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  conditions: ['workerd', 'worker', 'browser'],
  external: ['*.wasm'],
  metafile: true,
  logLevel: 'silent',
} as const;
/** WASM tolerance, DESIGN.md §1. */
export const ATOL = 1e-5;
export const RTOL = 1e-4;

export interface Spawned {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (killed after timeoutMs). */
export function runCommand(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

export interface RuntimeReport {
  runtime: string;
  version: string;
  resolved?: string;
  variants: string[];
  webWorkers: string[];
  results: { mode: string; detail: string; out: string }[];
  zeroCopy?: { mode: string; shared: boolean; equal: boolean }[];
}

/** The last stdout line as JSON; fails with the runtime's output when there is none. */
export function parseReport(what: string, r: Spawned): RuntimeReport {
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !line.startsWith('{')) {
    throw new Error(`${what} exited with ${r.code}\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}`);
  }
  return JSON.parse(line) as RuntimeReport;
}

/** One smoke case's output matches the float64 reference within the WASM tolerance. */
export function checkCase(what: string, c: SmokeCase, out: Float32Array): void {
  const { q, k, v } = caseInputs(c);
  const ref = attentionReference(q, k, v, c.heads, c.mode, c.L, c.bs, {}).data;
  expectClose(out, ref, ATOL, RTOL, `${what} ${c.mode} L=${c.L} bs=${c.bs} [${q.shape}] causal`);
}

/** Every smoke case ran, and each output matches the float64 reference. */
/** Every smoke case ran again with createTensor() tensors, bit-identical; `shared`: zero-copy expected. */
export function checkZeroCopy(what: string, zeroCopy: { mode: string; shared: boolean; equal: boolean }[] | undefined, shared: boolean): void {
  if (!zeroCopy || zeroCopy.length !== SMOKE_CASES.length) throw new Error(`${what}: ${zeroCopy?.length ?? 0} createTensor runs for ${SMOKE_CASES.length} cases`);
  for (const z of zeroCopy) {
    if (!z.equal) throw new Error(`${what}: ${z.mode} with createTensor tensors differs from the plain call`);
    if (z.shared !== shared) throw new Error(`${what}: ${z.mode} createTensor data in ${z.shared ? 'shared' : 'unshared'} memory, expected ${shared ? 'shared (zero-copy)' : 'an ordinary array'}`);
  }
}

export function checkResults(what: string, results: { mode: string; out: string }[]): void {
  if (results.length !== SMOKE_CASES.length) throw new Error(`${what}: ${results.length} results for ${SMOKE_CASES.length} cases`);
  SMOKE_CASES.forEach((c, i) => {
    if (results[i].mode !== c.mode) throw new Error(`${what}: result ${i} is mode '${results[i].mode}', expected '${c.mode}'`);
    checkCase(what, c, base64ToF32(results[i].out));
  });
}
