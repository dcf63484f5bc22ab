/* kopitiam in-browser character LSTM: the forward pass over typed arrays, no dependencies.
 *
 * Reads the document of model/webformat.py (reports/model.json): Keras weights, gates i, f, c, o.
 * At load time each LSTM layer's kernel (in, 4H), recurrent kernel (H, 4H) and bias are fused into
 * one Float32Array laid out unit by unit, input by input, gate by gate: for hidden unit j the four
 * gate pre-activations over the concatenated [x ; h] vector are computed in ONE pass (four
 * accumulators sharing each input load), and the cell update follows at once. Every buffer
 * (weights, [x ; h], gates, cell states, logits) is allocated once at load; a step allocates nothing.
 *
 * Engines: "wasm" runs that fused gate pass in a small WebAssembly SIMD kernel (f32x4: the four
 * gates of a unit are one vector, so each input costs one multiply-add; float32 sums and [x ; h]
 * in its linear memory, like TensorFlow), assembled below byte by byte; "js" is the same loop in
 * plain JavaScript (float64 sums). "auto" (default) picks wasm when the browser validates SIMD,
 * else js. Cell updates, the Dense layer and sampling are JavaScript in both.
 *
 * Exposes globalThis.KopitiamLSTM = {CharLSTM, Generator, mulberry32, softmax, argmax, decodeWeights,
 * wasmSimdAvailable, gatesModuleBytes}.
 */
(function (root) {
  "use strict";

  var FORMAT = "kopitiam-char-lstm";

  function decodeWeights(doc) {
    if (doc.format !== FORMAT || doc.version !== 1) {
      throw new Error("not a " + FORMAT + " v1 model (format=" + doc.format + ", version=" + doc.version + ")");
    }
    if (doc.dtype !== "float32" || doc.byte_order !== "little") {
      throw new Error("unsupported weights encoding " + doc.dtype + "/" + doc.byte_order);
    }
    if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
      throw new Error("this browser is big-endian; the float32 blob is little-endian");
    }
    var bin = atob(doc.weights_base64);
    if (bin.length !== 4 * doc.n_params) {
      throw new Error("weights blob has " + bin.length + " bytes for " + doc.n_params + " float32 values");
    }
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var flat = new Float32Array(bytes.buffer);
    var tensors = {};
    doc.tensors.forEach(function (t) {
      var size = t.shape.reduce(function (a, b) { return a * b; }, 1);
      tensors[t.name] = { shape: t.shape, data: flat.subarray(t.offset, t.offset + size) };
    });
    return tensors;
  }

  function leb128(n) {
    var out = [];
    do { var byte = n & 0x7f; n >>>= 7; if (n) byte |= 0x80; out.push(byte); } while (n);
    return out;
  }

  /* Bytes of a module importing env.mem and exporting
   *   gates(m, x, n, h, b, z): for each of h units: z[0..3] = b[0..3] + sum_k m[k][0..3] * x[k]
   * (byte offsets; m advances 16 bytes per input, b and z 16 bytes per unit; n a multiple of 4).
   * Four accumulators over inputs k, k+1, k+2, k+3 keep four multiply-adds in flight. */
  function gatesModuleBytes() {
    var I32 = 0x7f, V128 = 0x7b, M = 0, X = 1, N = 2, H = 3, B = 4, Z = 5, ACC = [6, 7, 8, 9], K = 10, XP = 11;
    var get = function (i) { return [0x20, i]; }, set = function (i) { return [0x21, i]; };
    var sleb = function (c) { return c < 64 ? [c] : [(c & 0x7f) | 0x80, c >> 7]; };  // 0 <= c < 8192
    var add = function (i, c) { return [].concat(get(i), [0x41], sleb(c), [0x6a], set(i)); };  // i += c
    var sub = function (i, c) { return [].concat(get(i), [0x41], sleb(c), [0x6b], set(i)); };  // i -= c
    var v128Load = function (off) { return [0xfd, 0x00, 0x04, off]; }, f32Load = function (off) { return [0x2a, 0x02, off]; };
    var V128_STORE = [0xfd, 0x0b, 0x04, 0x00], ZERO = [0xfd, 0x0c].concat(new Array(16).fill(0));
    var SPLAT = [0xfd, 0x13], MUL = [0xfd, 0xe6, 0x01], ADDV = [0xfd, 0xe4, 0x01];
    var madd = [];  // acc[q] += m[k + q][0..3] * x[k + q], q = 0..3
    for (var q = 0; q < 4; q++) {
      madd = madd.concat(get(ACC[q]), get(M), v128Load(16 * q), get(XP), f32Load(4 * q), SPLAT, MUL, ADDV, set(ACC[q]));
    }
    var code = [].concat(
      [0x02, 0x40, 0x03, 0x40],                       // block { loop {          (units)
      get(H), [0x45, 0x0d, 0x01],                     //   if h == 0: leave the block
      get(B), v128Load(0), set(ACC[0]),               //   acc0 = b[0..3]; acc1..3 = 0
      ZERO, set(ACC[1]), ZERO, set(ACC[2]), ZERO, set(ACC[3]),
      get(X), set(XP), get(N), set(K),                //   xp = x, k = n
      [0x02, 0x40, 0x03, 0x40],                       //   block { loop {      (inputs, 4 at a time)
      get(K), [0x45, 0x0d, 0x01],                     //     if k == 0: leave
      madd, add(M, 64), add(XP, 16), sub(K, 4),
      [0x0c, 0x00, 0x0b, 0x0b],                       //   } }
      get(Z), get(ACC[0]), get(ACC[1]), ADDV, get(ACC[2]), get(ACC[3]), ADDV, ADDV, V128_STORE,  // z = sum
      add(Z, 16), add(B, 16), sub(H, 1),
      [0x0c, 0x00, 0x0b, 0x0b]);                      // } }
    var body = [0x02, 0x04, V128, 0x02, I32].concat(code, [0x0b]);  // locals: acc0..3 v128; k, xp i32
    var section = function (id, bytes) { return [id].concat(leb128(bytes.length), bytes); };
    var name = function (str) { return [str.length].concat(Array.from(str, function (ch) { return ch.charCodeAt(0); })); };
    return new Uint8Array([].concat(
      [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
      section(1, [0x01, 0x60, 0x06, I32, I32, I32, I32, I32, I32, 0x00]),
      section(2, [].concat([0x01], name("env"), name("mem"), [0x02, 0x00, 0x01])),
      section(3, [0x01, 0x00]),
      section(7, [].concat([0x01], name("gates"), [0x00, 0x00])),
      section(10, [].concat([0x01], leb128(body.length), body))));
  }

  function wasmSimdAvailable() {
    try {
      return typeof WebAssembly === "object" && WebAssembly.validate(gatesModuleBytes());
    } catch (err) {
      return false;
    }
  }

  function CharLSTM(doc, options) {
    var engine = (options && options.engine) || "auto";
    if (engine === "auto") engine = wasmSimdAvailable() ? "wasm" : "js";
    if (engine !== "js" && engine !== "wasm") throw new Error("unknown engine " + engine + " (js | wasm | auto)");
    if (engine === "wasm" && !wasmSimdAvailable()) throw new Error("this browser has no WebAssembly SIMD");
    this.engine = engine;
    var tensors = decodeWeights(doc);
    var net = doc.network;
    this.doc = doc;
    this.tokens = doc.vocab.tokens;
    this.endId = doc.vocab.end_id;
    this.unkId = doc.vocab.unk_id;
    this.V = net.vocab_size;
    this.E = net.embedding_dim;
    this.embedding = tensors.embedding.data;
    this.index = new Map();
    for (var t = 0; t < this.tokens.length; t++) {
      if (t !== this.endId && t !== this.unkId) this.index.set(this.tokens[t], t);
    }
    this.layers = [];
    var width = this.E, l, H, n, sizes = [], total = 0;
    var pad4 = function (k) { return Math.ceil(k / 4) * 4; };  // [x ; h ; zeros]: the kernel takes 4 inputs a turn
    for (l = 0, n = width; l < net.num_layers; l++) {  // float32 counts of M, B, xh, z per layer
      H = tensors["lstm_" + l + "/recurrent_kernel"].shape[0];
      sizes.push([4 * H * pad4(n + H), 4 * H, pad4(n + H), 4 * H]);
      n = H;
    }
    var heap = null, offset = 0;
    var alloc = function (count) {  // 16-byte aligned Float32Array: in wasm memory, or a plain one
      if (!heap) return new Float32Array(count);
      var view = new Float32Array(heap.buffer, offset, count);
      offset += Math.ceil(count / 4) * 16;
      return view;
    };
    if (engine === "wasm") {
      sizes.forEach(function (s) { s.forEach(function (c) { total += Math.ceil(c / 4) * 16; }); });
      heap = new WebAssembly.Memory({ initial: Math.ceil(total / 65536) + 1 });
      var instance = new WebAssembly.Instance(new WebAssembly.Module(gatesModuleBytes()), { env: { mem: heap } });
      this.wasmGates = instance.exports.gates;
    }
    for (l = 0; l < net.num_layers; l++) {
      var W = tensors["lstm_" + l + "/kernel"].data, U = tensors["lstm_" + l + "/recurrent_kernel"].data;
      var b = tensors["lstm_" + l + "/bias"].data;
      H = tensors["lstm_" + l + "/recurrent_kernel"].shape[0];
      var G = 4 * H;
      n = pad4(width + H);  // inputs per unit in M; the padding inputs have zero weights and stay 0
      var M = alloc(H * n * 4), B = alloc(G);
      for (var j = 0; j < H; j++) {
        for (var g = 0; g < 4; g++) {
          var col = g * H + j;
          B[4 * j + g] = b[col];
          for (var k = 0; k < width; k++) M[(j * n + k) * 4 + g] = W[k * G + col];
          for (var r = 0; r < H; r++) M[(j * n + width + r) * 4 + g] = U[r * G + col];
        }
      }
      var xh = heap ? alloc(n) : new Float64Array(n), z = heap ? alloc(G) : null;
      this.layers.push({ nIn: width, H: H, n: n, M: M, B: B, xh: xh, z: z, c: new Float64Array(H), hNew: new Float64Array(H),
                         mOff: M.byteOffset, bOff: B.byteOffset, xhOff: xh.byteOffset, zOff: z ? z.byteOffset : 0 });
      width = H;
    }
    this.H = width;
    var K = tensors["logits/kernel"].data;  // (H, V) -> transposed (V, H) for contiguous dot products
    this.Wd = new Float32Array(this.V * width);
    for (var v = 0; v < this.V; v++) for (var q = 0; q < width; q++) this.Wd[v * width + q] = K[q * this.V + v];
    this.bd = tensors["logits/bias"].data;
    this.logits = new Float64Array(this.V);
    this.probs = new Float64Array(this.V);
    this.nParams = doc.n_params;
    this.reset();
  }

  CharLSTM.prototype.reset = function () {
    for (var l = 0; l < this.layers.length; l++) { this.layers[l].xh.fill(0); this.layers[l].c.fill(0); }
  };

  /* Text -> ids; unknown characters become UNK (counted in .unknown). Iterates code points. */
  CharLSTM.prototype.encode = function (text) {
    var ids = [], unknown = 0;
    for (var ch of text) {
      var id = this.index.get(ch);
      if (id === undefined) { id = this.unkId; unknown++; }
      ids.push(id);
    }
    return { ids: ids, unknown: unknown };
  };

  CharLSTM.prototype.decodeId = function (id) {
    if (id === this.endId) return "";
    return id === this.unkId ? "\ufffd" : this.tokens[id];
  };

  /* Feed one token; returns the (reused) Float64Array of next-token logits. */
  CharLSTM.prototype.step = function (token) {
    var E = this.E, emb = this.embedding, off = token * E, layers = this.layers;
    var xh = layers[0].xh;
    for (var e = 0; e < E; e++) xh[e] = emb[off + e];
    for (var l = 0; l < layers.length; l++) {
      var L = layers[l], M = L.M, B = L.B, H = L.H, n = L.n, c = L.c, hNew = L.hNew;
      xh = L.xh;
      if (this.wasmGates) {  // one SIMD pass over [x ; h] for all 4H gates, then the cell update
        this.wasmGates(L.mOff, L.xhOff, n, H, L.bOff, L.zOff);
        var z = L.z;
        for (var u = 0; u < H; u++) {
          var ui = 1 / (1 + Math.exp(-z[4 * u])), uf = 1 / (1 + Math.exp(-z[4 * u + 1]));
          var uo = 1 / (1 + Math.exp(-z[4 * u + 3]));
          var cu = uf * c[u] + ui * Math.tanh(z[4 * u + 2]);
          c[u] = cu;
          hNew[u] = uo * Math.tanh(cu);
        }
      } else for (var j = 0, p = 0; j < H; j++) {
        var zi = B[4 * j], zf = B[4 * j + 1], zc = B[4 * j + 2], zo = B[4 * j + 3];
        for (var k = 0; k < n; k++, p += 4) {
          var x = xh[k];
          zi += M[p] * x; zf += M[p + 1] * x; zc += M[p + 2] * x; zo += M[p + 3] * x;
        }
        var ig = 1 / (1 + Math.exp(-zi)), fg = 1 / (1 + Math.exp(-zf)), og = 1 / (1 + Math.exp(-zo));
        var cj = fg * c[j] + ig * Math.tanh(zc);
        c[j] = cj;
        hNew[j] = og * Math.tanh(cj);
      }
      var nIn = L.nIn;
      for (var h = 0; h < H; h++) xh[nIn + h] = hNew[h];  // recurrent input of the next step
      if (l + 1 < layers.length) {
        var nx = layers[l + 1].xh;
        for (var h2 = 0; h2 < H; h2++) nx[h2] = hNew[h2];  // input of the layer above
      }
    }
    var top = layers[layers.length - 1].hNew, Wd = this.Wd, bd = this.bd, out = this.logits, V = this.V, Ht = this.H;
    for (var v = 0, q = 0; v < V; v++) {
      var s0 = bd[v], s1 = 0;
      var end = q + Ht, i = 0;
      for (; q + 1 < end; q += 2, i += 2) { s0 += Wd[q] * top[i]; s1 += Wd[q + 1] * top[i + 1]; }
      if (q < end) { s0 += Wd[q] * top[i]; q++; }
      out[v] = s0 + s1;
    }
    return out;
  };

  /* Softmax of logits / temperature into out (temperature 1 = the model's own distribution). */
  function softmax(logits, temperature, out) {
    var m = -Infinity, n = logits.length, i, s = 0;
    for (i = 0; i < n; i++) if (logits[i] > m) m = logits[i];
    for (i = 0; i < n; i++) { out[i] = Math.exp((logits[i] - m) / temperature); s += out[i]; }
    for (i = 0; i < n; i++) out[i] /= s;
    return out;
  }

  /* First index of the maximum, like numpy.argmax. */
  function argmax(a) {
    var best = 0;
    for (var i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
    return best;
  }

  /* mulberry32: a small, fast, seeded 32-bit PRNG; uniform floats in [0, 1). */
  function mulberry32(seed) {
    var a = seed >>> 0;
    return function () {
      a = (a + 0x6D2B79F5) >>> 0;
      var t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  /* One generation: warms the state on END + prime, then yields one token per next() call
   * (-1 when done: END chosen with stopAtEnd, or length reached). */
  function Generator(model, opts) {
    this.model = model;
    this.length = opts.length;
    this.greedy = !!opts.greedy || !(opts.temperature > 0);
    this.temperature = opts.temperature;
    this.stopAtEnd = opts.stopAtEnd !== false;
    this.rng = mulberry32(opts.seed || 0);
    this.count = 0;
    this.stoppedAtEnd = false;
    model.reset();
    var logits = model.step(model.endId);
    for (var i = 0; i < opts.ids.length; i++) logits = model.step(opts.ids[i]);
    this.logits = logits;
  }

  Generator.prototype.next = function () {
    if (this.count >= this.length) return -1;
    var model = this.model, tok;
    if (this.greedy) {
      tok = argmax(this.logits);
    } else {
      var p = softmax(this.logits, this.temperature, model.probs), u = this.rng(), acc = 0;
      tok = p.length - 1;
      for (var i = 0; i < p.length; i++) { acc += p[i]; if (u < acc) { tok = i; break; } }
    }
    if (tok === model.endId && this.stopAtEnd) { this.stoppedAtEnd = true; this.count = this.length; return -1; }
    this.count++;
    if (this.count < this.length) this.logits = model.step(tok);
    return tok;
  };

  root.KopitiamLSTM = { CharLSTM: CharLSTM, Generator: Generator, mulberry32: mulberry32, softmax: softmax,
                        argmax: argmax, decodeWeights: decodeWeights, wasmSimdAvailable: wasmSimdAvailable,
                        gatesModuleBytes: gatesModuleBytes };
})(typeof window !== "undefined" ? window : globalThis);
