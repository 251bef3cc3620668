// HMAC-SHA-256 (RFC 2104 over FIPS 180-4 SHA-256) under one fixed key, in JavaScript.
// Why not crypto.createHmac: the credential cache computes one HMAC per HTTP request, and each createHmac
// goes through OpenSSL 3's algorithm fetch and context setup. Under load that measured 8-9 µs per request
// in the server (2 µs in a tight loop), more than all of post_msg's own parsing. Here the key's inner and
// outer pad blocks are compressed once, so a short message costs two compressions and no native call.
// spec/host/hmac-sha256.spec.ts checks it against createHmac and the RFC 4231 vectors.

const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

const INITIAL = Int32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
const BLOCK = 64;

/** One SHA-256 compression of `block[offset..offset+64)` into `state` (FIPS 180-4 §6.2.2). */
function compress(state: Int32Array, block: Uint8Array, offset: number, w: Int32Array): void {
  for (let t = 0; t < 16; t++) {
    const i = offset + t * 4;
    w[t] = (block[i]! << 24) | (block[i + 1]! << 16) | (block[i + 2]! << 8) | block[i + 3]!;
  }
  for (let t = 16; t < 64; t++) {
    const w15 = w[t - 15]!;
    const w2 = w[t - 2]!;
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    w[t] = (w[t - 16]! + s0 + w[t - 7]! + s1) | 0;
  }
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  let e = state[4]!;
  let f = state[5]!;
  let g = state[6]!;
  let h = state[7]!;
  for (let t = 0; t < 64; t++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (h + s1 + ch + K[t]! + w[t]!) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (s0 + maj) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

/**
 * SHA-256 of `data[0..length)` continued from `from`, which has already absorbed `prefixBytes` bytes (whole
 * blocks), into `out`. `tail` is scratch space of two blocks.
 */
function finish(from: Int32Array, data: Uint8Array, length: number, prefixBytes: number, out: Int32Array, tail: Uint8Array, w: Int32Array): void {
  out.set(from);
  let offset = 0;
  for (; offset + BLOCK <= length; offset += BLOCK) compress(out, data, offset, w);
  // Padding (§5.1.1): 0x80, zeros, then the message length in bits as a 64-bit big-endian number.
  const rest = length - offset;
  const end = rest + 9 <= BLOCK ? BLOCK : 2 * BLOCK;
  for (let i = 0; i < rest; i++) tail[i] = data[offset + i]!;
  tail[rest] = 0x80;
  tail.fill(0, rest + 1, end - 8);
  const bits = (prefixBytes + length) * 8;
  const high = Math.floor(bits / 2 ** 32);
  const low = bits >>> 0;
  for (let i = 0; i < 4; i++) {
    tail[end - 8 + i] = high >>> (24 - 8 * i);
    tail[end - 4 + i] = low >>> (24 - 8 * i);
  }
  compress(out, tail, 0, w);
  if (end > BLOCK) compress(out, tail, BLOCK, w);
}

export class HmacSha256 {
  private readonly inner = Int32Array.from(INITIAL);
  private readonly outer = Int32Array.from(INITIAL);
  private readonly w = new Int32Array(64);
  private readonly tail = new Uint8Array(2 * BLOCK);
  private readonly innerWords = new Int32Array(8);
  private readonly innerDigest = new Uint8Array(32);
  private readonly result = new Int32Array(8);
  private scratch = new Uint8Array(256);

  constructor(key: Uint8Array) {
    // RFC 2104 §2: a key longer than the block is hashed first; a shorter one is padded with zeros.
    const block = new Uint8Array(BLOCK);
    if (key.length > BLOCK) {
      const hashed = new Int32Array(8);
      finish(INITIAL, key, key.length, 0, hashed, this.tail, this.w);
      block.set(toBytes(hashed));
    } else {
      block.set(key);
    }
    const pad = new Uint8Array(BLOCK);
    for (let i = 0; i < BLOCK; i++) pad[i] = block[i]! ^ 0x36;
    compress(this.inner, pad, 0, this.w);
    for (let i = 0; i < BLOCK; i++) pad[i] = block[i]! ^ 0x5c;
    compress(this.outer, pad, 0, this.w);
  }

  /** The MAC of the UTF-8 encoding of `message`, as eight 32-bit words; valid until the next call. */
  words(message: string): Int32Array {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    if (this.scratch.length < message.length * 3) this.scratch = new Uint8Array(message.length * 3);
    const { written } = encoder.encodeInto(message, this.scratch);
    finish(this.inner, this.scratch, written, BLOCK, this.innerWords, this.tail, this.w);
    // The message is a password here: leave no copy of it in the scratch buffers (nor in the schedule `w`).
    this.scratch.fill(0, 0, written);
    this.tail.fill(0);
    for (let i = 0; i < 8; i++) {
      const v = this.innerWords[i]!;
      this.innerDigest[i * 4] = v >>> 24;
      this.innerDigest[i * 4 + 1] = v >>> 16;
      this.innerDigest[i * 4 + 2] = v >>> 8;
      this.innerDigest[i * 4 + 3] = v;
    }
    finish(this.outer, this.innerDigest, 32, BLOCK, this.result, this.tail, this.w);
    this.w.fill(0);
    return this.result;
  }

  /** The MAC of the UTF-8 encoding of `message`, 32 bytes. */
  digest(message: string): Buffer {
    return Buffer.from(toBytes(this.words(message)));
  }

  /** The MAC as a 16-character string (two 16-bit units per word): a cheap Map key. */
  key(message: string): string {
    const w = this.words(message);
    let s = '';
    for (let i = 0; i < 8; i++) s += String.fromCharCode(w[i]! >>> 16, w[i]! & 0xffff);
    return s;
  }
}

const encoder = new TextEncoder();

function toBytes(words: Int32Array): Uint8Array {
  const bytes = new Uint8Array(words.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < words.length; i++) view.setInt32(i * 4, words[i]!);
  return bytes;
}
