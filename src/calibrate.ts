// calibrate(): re-measures the cost model's constants on this machine (and GPU, when one
// is found) with a few small runs, installs them, and returns them so that an app can
// persist the result and pass it to setCalibration() on its next start.
import { type Calibration, type PathRate, bytesMoved, getCalibration, isSoftwareAdapter, setCalibration } from './cost-model.js';
import type { SparseAttentionOptions } from './config.js';
import { SparseAttention } from './sparse-attention.js';
import { UnsupportedError } from './errors.js';

export interface CalibrateOptions {
  /** Measure the GPU path too (default true: skipped when no adapter is found). */
  gpu?: boolean;
  /** Passed to the instances it measures (threads, device, wasmVariant). */
  options?: Pick<SparseAttentionOptions, 'threads' | 'device' | 'wasmVariant'>;
  /** Timed runs per shape (median), default 5. */
  runs?: number;
}

// Shapes with different bytes-to-FLOPs ratios, so that fixed cost, transfer rate and
// compute rate can be told apart: [batch, nCtx, nEmbd], heads, mode, L.
const SHAPES: [[number, number, number], number, 'all' | 'strided', number | undefined][] = [
  [[1, 64, 64], 1, 'all', undefined],
  [[1, 512, 256], 4, 'all', undefined],
  [[1, 2048, 256], 4, 'strided', 64],
  [[1, 1024, 256], 4, 'all', undefined],
];

export async function calibrate(opts: CalibrateOptions = {}): Promise<Calibration> {
  const runs = opts.runs ?? 5;
  const base = getCalibration();
  const wasm = await measure('wasm', opts, runs);
  const wasmRate = fit(wasm.samples, base.wasm, wasm.threads);
  const result: Calibration = {
    wasm: wasmRate,
    webgpu: { ...base.webgpu },
    source: `calibrate() on ${new Date().toISOString()}: wasm ${wasm.detail}`,
  };
  if (opts.gpu !== false) {
    try {
      const gpu = await measure('webgpu', opts, runs);
      const cls = isSoftwareAdapter(gpu.detail) ? 'software' : 'hardware';
      result.webgpu[cls] = fit(gpu.samples, base.webgpu[cls], 1);
      result.source += `; webgpu (${cls}) ${gpu.detail}`;
    } catch (e) {
      result.source += `; no GPU measured (${(e as Error).message.replace(/^SparseAttention: /, '')})`;
    }
  }
  setCalibration(result);
  return result;
}

interface Sample { ms: number; bytes: number; flops: number }

async function measure(backend: 'wasm' | 'webgpu', opts: CalibrateOptions, runs: number) {
  const samples: Sample[] = [];
  let detail = '';
  let threads = 1;
  for (const [shape, heads, mode, L] of SHAPES) {
    const attn = new SparseAttention(heads, mode, L, 32, { ...opts.options, backend });
    try {
      const n = shape[0] * shape[1] * shape[2];
      const t = { data: new Float32Array(n).map((_, i) => Math.sin(i)), shape };
      const plan = attn.plan(shape);
      await attn.forward(t, t, t); // warm-up: workers, pipelines, buffers
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        await attn.forward(t, t, t);
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      if (attn.lastRun?.backend !== backend) throw new UnsupportedError(attn.lastRun?.reason ?? `${backend} did not run`);
      detail = attn.lastRun.detail;
      threads = Number(/(\d+) threads?/.exec(detail)?.[1] ?? 1);
      samples.push({ ms: times[times.length >> 1], bytes: bytesMoved({ ...plan, batch: shape[0], nCtx: shape[1], nEmbd: shape[2] } as never), flops: plan.visitedFlops });
    } finally {
      attn.dispose();
    }
  }
  return { samples, detail, threads };
}

/**
 * Least-squares fit of ms = fixed + bytes/(gbps·1e6) + flops/(gflops·threads·1e6); a
 * coefficient that comes out non-positive (noise) keeps its previous value.
 */
function fit(samples: Sample[], prev: PathRate, threads: number): PathRate {
  // Normal equations for x = [fixed, 1/gbps', 1/gflops'] with columns [1, bytes/1e6, flops/1e6].
  const rows = samples.map((s) => [1, s.bytes / 1e6, s.flops / 1e6]);
  const ata = [0, 1, 2].map((i) => [0, 1, 2].map((j) => rows.reduce((a, r) => a + r[i] * r[j], 0)));
  const atb = [0, 1, 2].map((i) => rows.reduce((a, r, k) => a + r[i] * samples[k].ms, 0));
  const x = solve3(ata, atb);
  if (!x) return prev;
  return {
    fixedMs: x[0] >= 0 ? x[0] : prev.fixedMs,
    gbps: x[1] > 0 ? 1 / x[1] : prev.gbps,
    gflops: x[2] > 0 ? 1 / x[2] / threads : prev.gflops,
  };
}

function solve3(a: number[][], b: number[]): number[] | null {
  const m = a.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < 3; c++) {
    let p = c;
    for (let r = c + 1; r < 3; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    if (Math.abs(m[p][c]) < 1e-12) return null;
    [m[c], m[p]] = [m[p], m[c]];
    for (let r = 0; r < 3; r++) {
      if (r === c) continue;
      const f = m[r][c] / m[c][c];
      for (let k = c; k < 4; k++) m[r][k] -= f * m[c][k];
    }
  }
  return [m[0][3] / m[0][0], m[1][3] / m[1][1], m[2][3] / m[2][2]];
}
