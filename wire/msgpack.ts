/**
 * The subset of MessagePack that Redis's Lua `cmsgpack` speaks.
 *
 * Job records are msgpack tables written by Lua, and submit arguments are
 * msgpack read by Lua. `cmsgpack` does not accept the `bin` types, so bytes
 * are written as `str` (Lua strings are binary-safe), and on the way back the
 * decoder returns the values of the map keys listed in `binaryKeys` as bytes
 * rather than text.
 */

export type Packable =
  | null
  | undefined
  | boolean
  | number
  | string
  | Uint8Array
  | readonly Packable[]
  | { readonly [key: string]: Packable };

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** Encodes `value`; object properties that are undefined are left out. */
export function pack(value: Packable): Buffer {
  const w = new Writer();
  w.value(value);
  return w.finish();
}

class Writer {
  private buf = Buffer.allocUnsafe(256);
  private pos = 0;

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  private raw(bytes: Uint8Array): void {
    const n = bytes.length;
    if (n < 32) this.byte(0xa0 | n);
    else if (n < 0x100) {
      this.byte(0xd9);
      this.byte(n);
    } else if (n < 0x10000) {
      this.room(3);
      this.buf[this.pos++] = 0xda;
      this.buf.writeUInt16BE(n, this.pos);
      this.pos += 2;
    } else {
      this.room(5);
      this.buf[this.pos++] = 0xdb;
      this.buf.writeUInt32BE(n, this.pos);
      this.pos += 4;
    }
    this.room(n);
    this.buf.set(bytes, this.pos);
    this.pos += n;
  }

  /** A string as `str`: short ASCII strings are copied by hand, the rest UTF-8 encoded. */
  private text(v: string): void {
    const n = v.length;
    if (n < 32) {
      this.room(1 + n);
      const start = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = v.charCodeAt(i);
        if (c >= 0x80) break;
        this.buf[start + i] = c;
      }
      if (i === n) {
        this.buf[this.pos] = 0xa0 | n;
        this.pos = start + n;
        return;
      }
    }
    this.raw(utf8.encode(v));
  }

  private number(n: number): void {
    if (Number.isSafeInteger(n)) {
      if (n >= 0 && n < 128) return this.byte(n);
      if (n < 0 && n >= -32) return this.byte(n & 0xff);
      this.room(9);
      if (n >= -0x80000000 && n <= 0x7fffffff) {
        this.buf[this.pos++] = 0xd2;
        this.buf.writeInt32BE(n, this.pos);
        this.pos += 4;
      } else {
        this.buf[this.pos++] = 0xd3;
        this.buf.writeBigInt64BE(BigInt(n), this.pos);
        this.pos += 8;
      }
      return;
    }
    this.room(9);
    this.buf[this.pos++] = 0xcb;
    this.buf.writeDoubleBE(n, this.pos);
    this.pos += 8;
  }

  private header(small: number, n: number, code16: number): void {
    if (n < 16) return this.byte(small | n);
    this.room(5);
    if (n < 0x10000) {
      this.buf[this.pos++] = code16;
      this.buf.writeUInt16BE(n, this.pos);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = code16 + 1;
      this.buf.writeUInt32BE(n, this.pos);
      this.pos += 4;
    }
  }

  value(v: Packable): void {
    if (v === null || v === undefined) return this.byte(0xc0);
    if (typeof v === "boolean") return this.byte(v ? 0xc3 : 0xc2);
    if (typeof v === "number") return this.number(v);
    if (typeof v === "string") return this.text(v);
    if (v instanceof Uint8Array) return this.raw(v);
    if (Array.isArray(v)) {
      this.header(0x90, v.length, 0xdc);
      for (const item of v as readonly Packable[]) this.value(item);
      return;
    }
    const map = v as { readonly [key: string]: Packable };
    const keys = Object.keys(map);
    let count = 0;
    for (const k of keys) if (map[k] !== undefined) count++;
    this.header(0x80, count, 0xde);
    for (const k of keys) {
      const x = map[k];
      if (x === undefined) continue;
      this.text(k);
      this.value(x);
    }
  }
}

/** A decoded msgpack value. Maps become plain objects with string keys. */
export type Unpacked = null | boolean | number | string | Uint8Array | Unpacked[] | { [key: string]: Unpacked };

/**
 * Decodes one value. Strings found under a map key in `binaryKeys` come back
 * as `Uint8Array` (a copy: the input may be a reused buffer), every other
 * string as UTF-8 text.
 */
export function unpack(data: Uint8Array, binaryKeys: ReadonlySet<string> = new Set()): Unpacked {
  const r = new Reader(data, binaryKeys);
  const v = r.value(false);
  if (r.pos !== data.length) throw new Error(`msgpack: ${data.length - r.pos} trailing bytes`);
  return v;
}

/**
 * Decodes every value stored back to back in `data` (a record's cold map
 * and the items appended after it). Strings under `binaryKeys` and the
 * string elements of top-level arrays come back as bytes.
 */
export function unpackAll(data: Uint8Array, binaryKeys: ReadonlySet<string> = new Set()): Unpacked[] {
  const r = new Reader(data, binaryKeys);
  const out: Unpacked[] = [];
  while (r.pos < data.length) out.push(r.value(false, true));
  return out;
}

class Reader {
  pos = 0;
  private readonly view: DataView;

  constructor(
    private readonly data: Uint8Array,
    private readonly binaryKeys: ReadonlySet<string>,
  ) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  private need(n: number): void {
    if (this.pos + n > this.data.length) throw new Error("msgpack: truncated input");
  }

  private u8(): number {
    this.need(1);
    return this.data[this.pos++] as number;
  }

  private str(n: number, asBytes: boolean): string | Uint8Array {
    this.need(n);
    const start = this.pos;
    this.pos += n;
    if (asBytes) return this.data.slice(start, start + n);
    // Short ASCII strings (names, ids, routes) are most strings here:
    // building them directly is much cheaper than a TextDecoder call.
    if (n <= 32) {
      let ascii = "";
      for (let i = start; i < start + n; i++) {
        const c = this.data[i] as number;
        if (c >= 0x80) return utf8Decoder.decode(this.data.subarray(start, start + n));
        ascii += String.fromCharCode(c);
      }
      return ascii;
    }
    return utf8Decoder.decode(this.data.subarray(start, start + n));
  }

  private fixed(size: 1 | 2 | 4 | 8, kind: "u" | "i" | "f"): number {
    this.need(size);
    const at = this.pos;
    this.pos += size;
    const v = this.view;
    switch (`${kind}${size}`) {
      case "u1": return v.getUint8(at);
      case "u2": return v.getUint16(at);
      case "u4": return v.getUint32(at);
      case "u8": return Number(v.getBigUint64(at));
      case "i1": return v.getInt8(at);
      case "i2": return v.getInt16(at);
      case "i4": return v.getInt32(at);
      case "i8": return Number(v.getBigInt64(at));
      case "f4": return v.getFloat32(at);
      case "f8": return v.getFloat64(at);
    }
    throw new Error(`msgpack: bad number ${kind}${size}`);
  }

  private array(n: number, bytes: boolean): Unpacked[] {
    const out: Unpacked[] = [];
    for (let i = 0; i < n; i++) out.push(this.value(bytes));
    return out;
  }

  private map(n: number): { [key: string]: Unpacked } {
    const out: { [key: string]: Unpacked } = {};
    for (let i = 0; i < n; i++) {
      const key = String(this.value(false));
      out[key] = this.value(this.binaryKeys.has(key));
    }
    return out;
  }

  /** One value; `asBytes`: a string comes back as bytes; `bytesInside`: so do an array's strings. */
  value(asBytes: boolean, bytesInside = false): Unpacked {
    const b = this.u8();
    if (b < 0x80) return b;
    if (b >= 0xe0) return b - 0x100;
    if ((b & 0xe0) === 0xa0) return this.str(b & 0x1f, asBytes);
    if ((b & 0xf0) === 0x90) return this.array(b & 0x0f, bytesInside);
    if ((b & 0xf0) === 0x80) return this.map(b & 0x0f);
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.str(this.fixed(1, "u"), true);
      case 0xc5: return this.str(this.fixed(2, "u"), true);
      case 0xc6: return this.str(this.fixed(4, "u"), true);
      case 0xca: return this.fixed(4, "f");
      case 0xcb: return this.fixed(8, "f");
      case 0xcc: return this.fixed(1, "u");
      case 0xcd: return this.fixed(2, "u");
      case 0xce: return this.fixed(4, "u");
      case 0xcf: return this.fixed(8, "u");
      case 0xd0: return this.fixed(1, "i");
      case 0xd1: return this.fixed(2, "i");
      case 0xd2: return this.fixed(4, "i");
      case 0xd3: return this.fixed(8, "i");
      case 0xd9: return this.str(this.fixed(1, "u"), asBytes);
      case 0xda: return this.str(this.fixed(2, "u"), asBytes);
      case 0xdb: return this.str(this.fixed(4, "u"), asBytes);
      case 0xdc: return this.array(this.fixed(2, "u"), bytesInside);
      case 0xdd: return this.array(this.fixed(4, "u"), bytesInside);
      case 0xde: return this.map(this.fixed(2, "u"));
      case 0xdf: return this.map(this.fixed(4, "u"));
    }
    throw new Error(`msgpack: unsupported type byte 0x${b.toString(16)}`);
  }
}
