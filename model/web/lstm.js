/* kopitiam in-browser character LSTM: the forward pass over typed arrays, no dependencies.
 *
 * Reads the document of model/webmodel.py (reports/model.json): Keras weights, gates i, f, c, o.
 * At load time each LSTM layer's kernel (in, 4H), recurrent kernel (H, 4H) and bias are fused into
 * one Float32Array laid out unit by unit, input by input, gate by gate: for hidden unit j the four
 * gate pre-activations over the concatenated [x ; h] vector are computed in ONE pass (four
 * accumulators sharing each input load), and the cell update follows at once. Activations and
 * states are Float64Array buffers allocated once; a step allocates nothing.
 *
 * Exposes globalThis.KopitiamLSTM = {CharLSTM, Generator, mulberry32, softmax, argmax, decodeWeights}.
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

  function CharLSTM(doc) {
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
    var width = this.E;
    for (var l = 0; l < net.num_layers; l++) {
      var W = tensors["lstm_" + l + "/kernel"].data, U = tensors["lstm_" + l + "/recurrent_kernel"].data;
      var b = tensors["lstm_" + l + "/bias"].data;
      var H = tensors["lstm_" + l + "/recurrent_kernel"].shape[0], G = 4 * H, n = width + H;
      var M = new Float32Array(H * n * 4), B = new Float32Array(G);
      for (var j = 0; j < H; j++) {
        for (var g = 0; g < 4; g++) {
          var col = g * H + j;
          B[4 * j + g] = b[col];
          for (var k = 0; k < width; k++) M[(j * n + k) * 4 + g] = W[k * G + col];
          for (var r = 0; r < H; r++) M[(j * n + width + r) * 4 + g] = U[r * G + col];
        }
      }
      this.layers.push({ nIn: width, H: H, n: n, M: M, B: B,
                         xh: new Float64Array(n), c: new Float64Array(H), hNew: new Float64Array(H) });
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
      for (var j = 0, p = 0; j < H; j++) {
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

  root.KopitiamLSTM = { CharLSTM: CharLSTM, Generator: Generator, mulberry32: mulberry32,
                        softmax: softmax, argmax: argmax, decodeWeights: decodeWeights };
})(typeof window !== "undefined" ? window : globalThis);
