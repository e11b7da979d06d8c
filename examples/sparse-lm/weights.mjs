// Reads weights.safetensors (train.py's save_f16: u64 LE header length N, N bytes of JSON,
// then each tensor's little-endian IEEE binary16 data) from bytes, in any runtime, and checks
// its SHA-256 where WebCrypto exists. No file system here: see load-node.mjs for paths.

/** f32 value of every binary16 bit pattern (256 KiB, built once): exact, subnormals and NaN included. */
let HALF_TABLE = null;
export function halfTable() {
  if (HALF_TABLE) return HALF_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = halfToFloat(h);
  return (HALF_TABLE = t);
}

/** One binary16 bit pattern as a number: sign · 2^(e−15) · (1 + m/1024), subnormals 2^−14 · m/1024. */
export function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1024 + m) * 2 ** (e - 25);
}

/** Lower-case hex SHA-256 of bytes, or null where the runtime has no WebCrypto. */
export async function sha256Hex(bytes) {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return null;
  const d = new Uint8Array(await subtle.digest('SHA-256', bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Parses a safetensors file of F16 tensors into { name: { shape, data: Float32Array } }.
 * @param {ArrayBuffer | Uint8Array} input
 */
export function parseSafetensors(input) {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  if (bytes.byteLength < 8) throw new Error(`sparse-lm: weights: ${bytes.byteLength} bytes is too short for a safetensors file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (8 + n > bytes.byteLength) throw new Error(`sparse-lm: weights: header of ${n} bytes runs past the file (${bytes.byteLength} bytes)`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const base = 8 + n;
  const table = halfTable();
  const tensors = {};
  for (const [name, meta] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (meta.dtype !== 'F16') throw new Error(`sparse-lm: weights: tensor ${name} is ${meta.dtype}, expected F16`);
    const [a, b] = meta.data_offsets;
    const count = meta.shape.reduce((x, y) => x * y, 1);
    if (b - a !== count * 2 || base + b > bytes.byteLength) throw new Error(`sparse-lm: weights: tensor ${name} has offsets [${a}, ${b}] for shape [${meta.shape}]`);
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const o = base + a + 2 * i;
      data[i] = table[bytes[o] | (bytes[o + 1] << 8)];
    }
    tensors[name] = { shape: meta.shape, data };
  }
  return { tensors, metadata: header.__metadata__ ?? {} };
}

/**
 * Weights from bytes, checked against model.json's tensor list and SHA-256.
 * `verified`: true (the hash matched), or false where no WebCrypto exists; a mismatch throws.
 */
export async function readWeights(bytes, config) {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const want = config?.weights?.sha256;
  let verified = false;
  if (want) {
    const got = await sha256Hex(u8);
    if (got !== null && got !== want) throw new Error(`sparse-lm: weights SHA-256 ${got} differs from model.json's ${want}`);
    verified = got !== null;
  }
  const { tensors } = parseSafetensors(u8);
  for (const [name, shape] of config?.weights?.tensors ?? []) {
    const t = tensors[name];
    if (!t || t.shape.join() !== shape.join()) throw new Error(`sparse-lm: weights: tensor ${name} is [${t?.shape ?? 'missing'}], model.json says [${shape}]`);
  }
  return { tensors, verified };
}
