#!/usr/bin/env node
// A small static server for the page (web/): serves the project's dist/ and this example's
// folder with Cross-Origin-Opener-Policy and Cross-Origin-Embedder-Policy, so the page is
// cross-origin isolated and the CPU path can run worker threads over shared memory.
//   npm run build && node examples/sparse-lm/serve.mjs [--port 8080] → http://127.0.0.1:8080/
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm',
  '.json': 'application/json', '.safetensors': 'application/octet-stream', '.svg': 'image/svg+xml', '.png': 'image/png', '.map': 'application/json',
};

/** Starts the server on 127.0.0.1:port (0: any free port); resolves to the http.Server. */
export function serve({ port = 0, isolated = true } = {}) {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (path === '/') {
      res.writeHead(302, { location: '/examples/sparse-lm/web/' }).end();
      return;
    }
    const rel = path.endsWith('/') ? `${path}index.html` : path;
    const file = join(ROOT, rel);
    const inside = rel.startsWith('/dist/') || rel.startsWith('/examples/sparse-lm/');
    if (!inside || !existsSync(file) || !TYPES[extname(file)]) {
      res.writeHead(404).end();
      return;
    }
    const headers = { 'content-type': TYPES[extname(file)], 'cache-control': 'no-cache' };
    if (isolated) {
      headers['cross-origin-opener-policy'] = 'same-origin';
      headers['cross-origin-embedder-policy'] = 'require-corp';
    }
    res.writeHead(200, headers).end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const i = process.argv.indexOf('--port');
  const server = await serve({ port: i < 0 ? 8080 : Number(process.argv[i + 1]) });
  console.log(`sparse-lm page: http://127.0.0.1:${server.address().port}/ (Ctrl-C stops)`);
}
