# workerd config for the sparse-lm worker. build.mjs writes the bundled worker.js beside
# this file with the files it embeds: the weights (a data module), model.json (a JSON
# module), the example's dense kernels and the library's kernels (compiled wasm modules).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "main", worker = .sparseLm)],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "main")],
);

const sparseLm :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "model.json", json = embed "model.json"),
    (name = "weights.safetensors", data = embed "weights.safetensors"),
    (name = "dense.relaxed.wasm", wasm = embed "dense.relaxed.wasm"),
    (name = "dense.simd.wasm", wasm = embed "dense.simd.wasm"),
    (name = "bsattn.relaxed.wasm", wasm = embed "bsattn.relaxed.wasm"),
    (name = "bsattn.simd.wasm", wasm = embed "bsattn.simd.wasm"),
  ],
  compatibilityDate = "2025-06-01",
);
