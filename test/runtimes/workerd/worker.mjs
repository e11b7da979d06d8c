// A Cloudflare-style worker for test/runtimes/workerd.test.ts. It imports the package by
// name; the test bundles it with esbuild under the 'workerd' condition (as wrangler does),
// which picks dist/workerd.js, whose kernel imports stay .wasm modules (config.capnp).
//   GET  /info  → { variants, sharedArrayBuffer, process (true under nodejs_compat) }
//   POST /run   { mode, L, bs, heads, shape, q, k, v (base64 f32) } → { detail, reason, out (base64 f32) }
import { SparseAttention, wasmVariants } from 'sparse-attention';
import { base64ToF32, f32ToBase64 } from '../fixtures/cases.mjs';

export default {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    try {
      if (pathname === '/info') {
        return Response.json({
          variants: wasmVariants(),
          sharedArrayBuffer: typeof SharedArrayBuffer !== 'undefined',
          process: typeof globalThis.process !== 'undefined',
          processVersionsNode: globalThis.process?.versions?.node ?? null,
        });
      }
      if (pathname === '/run' && request.method === 'POST') {
        const c = await request.json();
        const tensor = (b64) => ({ data: base64ToF32(b64), shape: c.shape });
        const attn = new SparseAttention(c.heads, c.mode, c.L ?? undefined, c.bs, { backend: 'wasm', ...c.options });
        try {
          const out = await attn.forward(tensor(c.q), tensor(c.k), tensor(c.v));
          return Response.json({ detail: attn.lastRun.detail, reason: attn.lastRun.reason, out: f32ToBase64(out.data) });
        } finally {
          attn.dispose();
        }
      }
      return new Response('not found', { status: 404 });
    } catch (e) {
      return Response.json({ error: String(e?.stack ?? e) }, { status: 500 });
    }
  },
};
