// A restricted pickle virtual machine (protocols 0-5, the opcodes torch.save emits and their
// relatives). It executes nothing: GLOBAL / STACK_GLOBAL ask `findGlobal`, which returns only
// PyCallables implemented in TypeScript (or refuses), and REDUCE / NEWOBJ call those.
//
// Python values become: None -> null, bool -> boolean, int -> number (bigint beyond 2^53),
// float -> number, str -> string, bytes -> Uint8Array, list and tuple -> array, dict -> Map,
// set -> Set.

/** A Python callable that imagic implements itself (an allow-listed global). */
export class PyCallable {
  constructor(readonly qualname: string, readonly call: (args: unknown[]) => unknown) {}
}

/** An object of a class imagic does not rebuild (only with placeholders allowed): inert data. */
export class PyObject {
  state: unknown = undefined;
  constructor(readonly qualname: string, readonly args: unknown[]) {}
}

export interface UnpickleHooks {
  /** The object a GLOBAL names, or throws (refusal). */
  findGlobal(module: string, name: string): unknown;
  /** BINPERSID / PERSID. */
  persistentLoad(pid: unknown): unknown;
  fail(msg: string): never;
}

const MAX_MEMO = 10_000_000;

/** Runs the pickle in `data` and returns the object it builds. */
export function unpickle(data: Uint8Array, hooks: UnpickleHooks): unknown {
  const fail: (msg: string) => never = hooks.fail; // annotated, so that calls narrow types
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const dec = new TextDecoder('utf-8');
  let pos = 0;
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const need = (n: number): number => {
    if (pos + n > data.length) fail(`the pickle ends early at byte ${pos} (truncated or corrupt data.pkl)`);
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = (): number => data[need(1)]!;
  const u16 = (): number => view.getUint16(need(2), true);
  const u32 = (): number => view.getUint32(need(4), true);
  const u64 = (): number => {
    const v = view.getBigUint64(need(8), true);
    if (v > BigInt(data.length)) fail(`a length (${v}) is past the end of the pickle`);
    return Number(v);
  };
  const bytes = (n: number): Uint8Array => data.subarray(need(n), pos);
  const line = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail('the pickle ends early inside a text line');
    const s = Buffer.from(data.subarray(pos, end)).toString('latin1');
    pos = end + 1;
    return s;
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail(`stack underflow at byte ${pos}`);
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail(`stack underflow at byte ${pos}`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = marks.pop();
    if (prev === undefined) fail(`no MARK on the stack at byte ${pos}`);
    stack = prev;
    return items;
  };
  const put = (i: number): void => {
    if (memo.size >= MAX_MEMO) fail('too many memo entries');
    memo.set(i, top());
  };
  const get = (i: number): void => {
    if (!memo.has(i)) fail(`memo key ${i} is not defined`);
    stack.push(memo.get(i));
  };
  const asDict = (d: unknown, op: string): Map<unknown, unknown> => {
    if (!(d instanceof Map)) fail(`${op} on a ${describe(d)}, not a dict`);
    return d;
  };
  const asList = (l: unknown, op: string): unknown[] => {
    if (!Array.isArray(l)) fail(`${op} on a ${describe(l)}, not a list`);
    return l;
  };
  const signedLE = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return int(v);
  };
  const callable = (f: unknown, op: string): PyCallable => {
    if (!(f instanceof PyCallable)) fail(`${op} on a ${describe(f)}, which is not a callable imagic allows`);
    return f;
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: need(8); break; // FRAME (frames are inline)
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length !== 0) fail(`STOP with ${stack.length} items on the stack`);
        return stack[0];
      case 0x28: marks.push(stack); stack = []; break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x49: { // INT (text; 00 / 01 are False / True)
        const s = line();
        stack.push(s === '00' ? false : s === '01' ? true : parseIntText(s, fail));
        break;
      }
      case 0x4a: stack.push(view.getInt32(need(4), true)); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4c: stack.push(parseIntText(line().replace(/L$/, ''), fail)); break; // LONG
      case 0x8a: stack.push(signedLE(bytes(u8()))); break; // LONG1
      case 0x8b: stack.push(signedLE(bytes(u32()))); break; // LONG4
      case 0x46: stack.push(Number(line())); break; // FLOAT
      case 0x47: stack.push(view.getFloat64(need(8), false)); break; // BINFLOAT (big-endian)
      case 0x58: stack.push(dec.decode(bytes(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(dec.decode(bytes(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(dec.decode(bytes(u64()))); break; // BINUNICODE8
      case 0x56: stack.push(line()); break; // UNICODE (raw-unicode-escape; ASCII in practice)
      case 0x54: stack.push(Buffer.from(bytes(u32())).toString('latin1')); break; // BINSTRING (Python 2 str)
      case 0x55: stack.push(Buffer.from(bytes(u8())).toString('latin1')); break; // SHORT_BINSTRING
      case 0x42: stack.push(bytes(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(bytes(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: case 0x96: stack.push(bytes(u64()).slice()); break; // BINBYTES8, BYTEARRAY8
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: { const items = popMark(); stack.push(items); break; } // LIST
      case 0x61: { const v = pop(); asList(top(), 'APPEND').push(v); break; } // APPEND
      case 0x65: { const items = popMark(); const l = asList(top(), 'APPENDS'); for (const x of items) l.push(x); break; } // APPENDS
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x74: { const items = popMark(); stack.push(items); break; } // TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push([pop(), b, c]); break; } // TUPLE3
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x64: { const items = popMark(); const d = new Map(); setItems(d, items); stack.push(d); break; } // DICT
      case 0x73: { const v = pop(); const k = pop(); asDict(top(), 'SETITEM').set(k, v); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(asDict(top(), 'SETITEMS'), items); break; } // SETITEMS
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail(`ADDITEMS on a ${describe(s)}`);
        for (const x of items) s.add(x);
        break;
      }
      case 0x91: { const items = popMark(); stack.push(new Set(items)); break; } // FROZENSET
      case 0x67: get(parseIntText(line(), fail) as number); break; // GET
      case 0x68: get(u8()); break; // BINGET
      case 0x6a: get(u32()); break; // LONG_BINGET
      case 0x70: put(parseIntText(line(), fail) as number); break; // PUT
      case 0x71: put(u8()); break; // BINPUT
      case 0x72: put(u32()); break; // LONG_BINPUT
      case 0x94: put(memo.size); break; // MEMOIZE
      case 0x63: { const module = line(); stack.push(hooks.findGlobal(module, line())); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL with non-string names');
        stack.push(hooks.findGlobal(module, name));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const f = callable(pop(), 'REDUCE');
        stack.push(f.call(asList(args, 'REDUCE')));
        break;
      }
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args)
        const args = pop();
        const f = callable(pop(), 'NEWOBJ');
        stack.push(f.call(asList(args, 'NEWOBJ')));
        break;
      }
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        const f = callable(pop(), 'NEWOBJ_EX');
        if (!(kwargs instanceof Map) || kwargs.size !== 0) fail(`NEWOBJ_EX of ${f.qualname} with keyword arguments`);
        stack.push(f.call(asList(args, 'NEWOBJ_EX')));
        break;
      }
      case 0x62: { // BUILD: obj.__setstate__(state)
        const state = pop();
        const obj = top();
        if (obj instanceof PyObject) obj.state = state;
        else if (!(obj instanceof Map)) fail(`BUILD on a ${describe(obj)}`); // dict attributes (state_dict()._metadata): dropped
        break;
      }
      case 0x51: stack.push(hooks.persistentLoad(pop())); break; // BINPERSID
      case 0x50: stack.push(hooks.persistentLoad(line())); break; // PERSID
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} ('${String.fromCharCode(op)}') at byte ${pos - 1}` +
          (op === 0x69 || op === 0x6f ? ' (INST / OBJ build class instances: refused)' : ''));
    }
  }

  function setItems(d: Map<unknown, unknown>, items: unknown[]): void {
    if (items.length % 2 !== 0) fail('odd number of items for a dict');
    for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
  }
}

function int(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function parseIntText(s: string, fail: (msg: string) => never): number | bigint {
  if (!/^[-+]?\d+$/.test(s.trim())) fail(`bad integer '${s}' in the pickle`);
  return int(BigInt(s.trim()));
}

/** A short description of a value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof PyCallable) return `global ${v.qualname}`;
  if (v instanceof PyObject) return `${v.qualname} object`;
  if (v instanceof Map) return 'dict';
  if (Array.isArray(v)) return 'list/tuple';
  if (typeof v === 'object') return v.constructor?.name ?? 'object';
  return typeof v;
}

/**
 * numpy scalars (global_step is often a numpy.int64 in SD checkpoints): pickled as
 * scalar(dtype('i8', False, True) + BUILD state, _codecs.encode('<latin1 text of the bytes>', 'latin1')).
 * The same three globals torch.load(weights_only=True) accepts; they decode to numbers here.
 */
const SCALARS: Record<string, (b: Buffer) => number | bigint | boolean> = {
  i1: (b) => b.readInt8(0), i2: (b) => b.readInt16LE(0), i4: (b) => b.readInt32LE(0), i8: (b) => int(b.readBigInt64LE(0)),
  u1: (b) => b.readUInt8(0), u2: (b) => b.readUInt16LE(0), u4: (b) => b.readUInt32LE(0), u8: (b) => int(b.readBigUInt64LE(0)),
  f4: (b) => b.readFloatLE(0), f8: (b) => b.readDoubleLE(0), b1: (b) => b[0] !== 0,
};
const WIDTH: Record<string, number> = { i1: 1, i2: 2, i4: 4, i8: 8, u1: 1, u2: 2, u4: 4, u8: 8, f4: 4, f8: 8, b1: 1 };
const numpyScalar = new PyCallable('numpy.core.multiarray.scalar', (args) => {
  const [dt, data] = args;
  const code = dt instanceof PyObject && dt.qualname === 'numpy.dtype' ? dt.args[0] : undefined;
  const endian = dt instanceof PyObject && Array.isArray(dt.state) ? dt.state[1] : '<';
  const read = typeof code === 'string' ? SCALARS[code] : undefined;
  if (read === undefined || endian === '>' || !(data instanceof Uint8Array) || data.length !== WIDTH[code as string]) {
    return new PyObject('numpy.core.multiarray.scalar', args); // an unusual scalar: kept inert
  }
  return read(Buffer.from(data));
});
export const NUMPY: Record<string, PyCallable> = {
  'numpy.core.multiarray.scalar': numpyScalar,
  'numpy._core.multiarray.scalar': numpyScalar,
  'numpy.dtype': new PyCallable('numpy.dtype', (args) => new PyObject('numpy.dtype', args)),
  '_codecs.encode': new PyCallable('_codecs.encode', (args) => {
    const [text, encoding] = args;
    if (typeof text !== 'string' || encoding !== 'latin1' || [...text].some((c) => c.charCodeAt(0) > 255)) {
      return new PyObject('_codecs.encode', args);
    }
    return Uint8Array.from(Buffer.from(text, 'latin1'));
  }),
};
