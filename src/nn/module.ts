// Module: a tree of named parameters whose dotted names are the checkpoint keys (as PyTorch's
// nn.Module and candle's VarBuilder), with strict state-dict loading that lists every bad key.
import { noGrad, type DType, type Device, type Tensor, keep } from '../engine/index.js';

export class StateDictError extends Error {
  constructor(
    readonly missing: string[],
    readonly unexpected: string[],
    readonly mismatched: { key: string; expected: number[]; got: number[] }[],
    where = 'state dict',
  ) {
    const lines: string[] = [];
    const list = (title: string, items: string[]) => {
      if (items.length === 0) return;
      lines.push(`${title} (${items.length}):`);
      for (const k of items.slice(0, 50)) lines.push(`  ${k}`);
      if (items.length > 50) lines.push(`  ... and ${items.length - 50} more`);
    };
    list('missing keys', missing);
    list('unexpected keys', unexpected);
    list('mis-shaped keys', mismatched.map((m) => `${m.key}: model [${m.expected.join(', ')}], checkpoint [${m.got.join(', ')}]`));
    super(`${where} does not match the model:\n${lines.join('\n')}`);
    this.name = 'StateDictError';
  }
}

export interface LoadOptions {
  /** Throw on missing, unexpected or mis-shaped keys (default true). */
  strict?: boolean;
  /** Checkpoint keys to ignore silently (exact names or RegExps). */
  ignore?: (string | RegExp)[];
  /** Where the weights come from, for error messages. */
  source?: string;
}

export abstract class Module {
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _children = new Map<string, Module>();
  training = false;

  /** Registers a parameter (kept: no scope frees it). Returns it for field initializers. */
  protected param(name: string, t: Tensor): Tensor {
    this._params.set(name, keep(t));
    return t;
  }
  /** A tensor that is state but not trained (saved and loaded like a parameter). */
  protected buffer(name: string, t: Tensor): Tensor {
    this._buffers.set(name, keep(t));
    return t;
  }
  protected module<M extends Module>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }

  /** [dotted name, tensor] for every parameter, in registration order. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this._params) out.push([prefix + n, t]);
    for (const [n, c] of this._children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }
  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this._buffers) out.push([prefix + n, t]);
    for (const [n, c] of this._children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix.replace(/\.$/, ''), this]];
    for (const [n, c] of this._children) out.push(...c.namedModules(`${prefix}${n}.`));
    return out;
  }
  children(): Module[] {
    return [...this._children.values()];
  }

  /** Parameters and buffers by checkpoint key (the tensors themselves, not copies). */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /** Copies weights in by key (converting dtype and device). Strict by default. */
  loadStateDict(sd: Record<string, Tensor> | Map<string, Tensor>, opts: LoadOptions = {}): void {
    const entries = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = new Map([...this.namedParameters(), ...this.namedBuffers()]);
    const ignored = (k: string) => (opts.ignore ?? []).some((p) => (typeof p === 'string' ? p === k : p.test(k)));
    const missing = [...own.keys()].filter((k) => !entries.has(k));
    const unexpected = [...entries.keys()].filter((k) => !own.has(k) && !ignored(k));
    const mismatched: { key: string; expected: number[]; got: number[] }[] = [];
    for (const [k, t] of entries) {
      const p = own.get(k);
      if (p !== undefined && p.shape.join(',') !== t.shape.join(',')) mismatched.push({ key: k, expected: p.shape, got: t.shape });
    }
    if ((opts.strict ?? true) && (missing.length || unexpected.length || mismatched.length)) {
      throw new StateDictError(missing, unexpected, mismatched, opts.source);
    }
    noGrad(() => {
      for (const [k, t] of entries) {
        const p = own.get(k);
        if (p === undefined || mismatched.some((m) => m.key === k)) continue;
        if (p.device === 'meta') p.assign_(t.to({ dtype: p.dtype, copy: true }));
        else p.copy_(t);
      }
    });
  }

  /** Moves/converts every parameter and buffer in place (handles stay valid). Float dtypes only change floats. */
  to(target: { device?: Device; dtype?: DType }): this {
    noGrad(() => {
      for (const [, t] of [...this.namedParameters(), ...this.namedBuffers()]) {
        const floating = ['float32', 'float16', 'bfloat16', 'float64'].includes(t.dtype);
        const dtype = floating ? target.dtype : undefined;
        if ((dtype === undefined || dtype === t.dtype) && (target.device === undefined || sameDevice(t.device, target.device))) continue;
        const moved = t.to({ dtype, device: target.device });
        t.assign_(moved);
        moved.dispose();
      }
    });
    return this;
  }

  /** Sets requiresGrad on every parameter (false to freeze). */
  requiresGrad_(flag = true): this {
    for (const p of this.parameters()) p.requiresGrad_(flag);
    return this;
  }
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  /** Total number of parameter elements. */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.numel, 0);
  }
  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const [, t] of [...this.namedParameters(), ...this.namedBuffers()]) t.dispose();
  }
}

function sameDevice(a: string, b: string): boolean {
  const norm = (d: string) => (d === 'cuda' ? 'cuda:0' : d);
  return norm(a) === norm(b);
}

/** Children named 0, 1, 2, ... (PyTorch's nn.ModuleList), so keys read `blocks.3.weight`. */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.module(String(i), m));
  }
  get length(): number {
    return this.items.length;
  }
  at(i: number): M {
    const m = this.items[i];
    if (m === undefined) throw new RangeError(`ModuleList index ${i} out of range (${this.items.length})`);
    return m;
  }
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}
