// Engine benchmarks (`npm run bench`): the same cases timed in C++ (build/Release/engine-bench, which
// calls ATen directly) and from TypeScript through the engine API, with the same op sequences,
// iteration counts and thread count, so that the difference is the cost of the JavaScript layer:
// the Node-API crossing, handle creation, tidy() bookkeeping and dispose. See bench/README.md.
//
//   npm run bench -- [--device cpu|cuda|cuda:N] [--dtype float32|bfloat16[,...]] [--iters N]
//                    [--calls N] [--rounds N] [--warmup N] [--threads N] [--cases a,b] [--json FILE]
//
// Runs are interleaved case by case: in each round every case runs once in C++ (one engine-bench
// process in --serve mode, kept for the whole run) and once in TypeScript (this process),
// alternating which goes first, and the table reports the best and the median of the rounds.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  buildInfo,
  conv2d,
  cuda,
  getNumThreads,
  liveTensors,
  manualSeed,
  randn,
  setNumThreads,
  tidy,
  type DType,
  type Device,
  type Tensor,
} from '../src/engine/index.js';

// ---- cases ---------------------------------------------------------------------------------------

type CppCase = 'matmul_fwd' | 'matmul_fwd_bwd' | 'conv2d_fwd' | 'conv2d_fwd_bwd' | 'add_small';
type CaseName = CppCase | 'add_small_tidy';

interface CaseSpec {
  name: CaseName;
  /** The engine-bench case that is its C++ baseline. */
  cpp: CppCase;
  /** Large ops: ms per iteration, with GFLOP/s; small ops: µs per call. */
  kind: 'large' | 'small';
  /** Nominal floating-point operations per iteration (large ops). */
  flops: number;
  /** Timed iterations (large ops) unless --iters says otherwise; the small ops use --calls. */
  iters: number;
  what: string;
}

const MM = 1024;
const CONV = { n: 1, c: 320, o: 320, h: 64, w: 64, k: 3 };
const CONV_FLOPS = 2 * CONV.n * CONV.o * CONV.h * CONV.w * CONV.c * CONV.k * CONV.k;

// Default iteration counts: the same as native/bench/engine-bench.cc (passed to it explicitly).
const CASES: CaseSpec[] = [
  { name: 'matmul_fwd', cpp: 'matmul_fwd', kind: 'large', flops: 2 * MM ** 3, iters: 25, what: 'matmul 1024x1024 @ 1024x1024, forward' },
  { name: 'matmul_fwd_bwd', cpp: 'matmul_fwd_bwd', kind: 'large', flops: 6 * MM ** 3, iters: 10, what: 'matmul forward + sum().backward()' },
  { name: 'conv2d_fwd', cpp: 'conv2d_fwd', kind: 'large', flops: CONV_FLOPS, iters: 10, what: 'conv2d 320->320 3x3 pad 1 on 1x320x64x64, forward' },
  { name: 'conv2d_fwd_bwd', cpp: 'conv2d_fwd_bwd', kind: 'large', flops: 3 * CONV_FLOPS, iters: 4, what: 'conv2d forward + sum().backward()' },
  { name: 'add_small', cpp: 'add_small', kind: 'small', flops: 0, iters: 0, what: 'add of two 1-element float32 tensors, x.add(y).dispose()' },
  { name: 'add_small_tidy', cpp: 'add_small', kind: 'small', flops: 0, iters: 0, what: 'the same add inside tidy() per call' },
];

interface Prepared {
  step: () => void;
  teardown: () => void;
}

/** The TypeScript side of each case: the op sequence of engine-bench.cc, through the engine API. */
function prepare(name: CaseName, device: Device, dtype: DType): Prepared {
  switch (name) {
    case 'matmul_fwd': {
      const a = randn([MM, MM], { dtype, device });
      const b = randn([MM, MM], { dtype, device });
      return {
        step: () => tidy(() => void a.matmul(b)),
        teardown: () => disposeAll(a, b),
      };
    }
    case 'matmul_fwd_bwd': {
      const a = randn([MM, MM], { dtype, device, requiresGrad: true });
      const b = randn([MM, MM], { dtype, device, requiresGrad: true });
      return {
        step: () =>
          tidy(() => {
            a.matmul(b).sum().backward();
            a.grad = null; // as zero_grad(set_to_none=True); engine-bench: a.mutable_grad().reset()
            b.grad = null;
          }),
        teardown: () => disposeAll(a, b),
      };
    }
    case 'conv2d_fwd':
    case 'conv2d_fwd_bwd': {
      const requiresGrad = name === 'conv2d_fwd_bwd';
      const x = randn([CONV.n, CONV.c, CONV.h, CONV.w], { dtype, device, requiresGrad });
      const w = randn([CONV.o, CONV.c, CONV.k, CONV.k], { dtype, device, requiresGrad });
      const step = requiresGrad
        ? () =>
            tidy(() => {
              conv2d(x, w, null, { padding: 1 }).sum().backward();
              x.grad = null;
              w.grad = null;
            })
        : () => tidy(() => void conv2d(x, w, null, { padding: 1 }));
      return { step, teardown: () => disposeAll(x, w) };
    }
    case 'add_small':
    case 'add_small_tidy': {
      const x = randn([1], { device });
      const y = randn([1], { device });
      const step = name === 'add_small' ? () => x.add(y).dispose() : () => tidy(() => void x.add(y));
      return { step, teardown: () => disposeAll(x, y) };
    }
  }
}

function disposeAll(...ts: Tensor[]): void {
  for (const t of ts) t.dispose();
}

// ---- options -------------------------------------------------------------------------------------

interface Options {
  device: Device;
  dtypes: DType[];
  iters: number | null;
  calls: number;
  rounds: number;
  warmup: number;
  threads: number;
  cases: CaseName[];
  json: string | null;
}

const USAGE = `usage: npm run bench -- [options]
  --device cpu|cuda|cuda:N   device to run on (default cpu)
  --dtype D[,D]              float32 and/or bfloat16 (default float32; on CUDA float32,bfloat16)
  --iters N                  timed iterations of every large-op case (default per case: ${CASES.filter((c) => c.kind === 'large').map((c) => `${c.name} ${c.iters}`).join(', ')})
  --calls N                  timed calls of the small-op cases (default 200000)
  --rounds N                 interleaved C++/TypeScript rounds per case (default 7)
  --warmup N                 untimed iterations before each timed run (default 2; small ops: calls/10)
  --threads N                intra-op threads for both sides (default: libtorch's, at::get_num_threads())
  --cases a,b                only these cases (${CASES.map((c) => c.name).join(', ')})
  --json FILE                also write the results as JSON`;

function fail(msg: string): never {
  console.error(`bench: ${msg}\n${USAGE}`);
  process.exit(2);
}

function positiveInt(v: string | undefined, flag: string): number {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < 1) fail(`${flag} needs a positive integer, got '${v ?? ''}'`);
  return n;
}

function parseOptions(argv: string[]): Options {
  const o: Options = { device: 'cpu', dtypes: [], iters: null, calls: 200_000, rounds: 7, warmup: 2, threads: getNumThreads(), cases: CASES.map((c) => c.name), json: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => inline ?? argv[++i] ?? fail(`${flag} needs a value`);
    switch (flag) {
      case '--device': o.device = value(); break;
      case '--dtype': {
        for (const d of value().split(',')) {
          if (d !== 'float32' && d !== 'bfloat16') fail(`--dtype: '${d}' is not float32 or bfloat16`);
          if (!o.dtypes.includes(d)) o.dtypes.push(d);
        }
        break;
      }
      case '--iters': o.iters = positiveInt(value(), flag); break;
      case '--calls': o.calls = positiveInt(value(), flag); break;
      case '--rounds': o.rounds = positiveInt(value(), flag); break;
      case '--warmup': o.warmup = Number.parseInt(value(), 10); if (!(o.warmup >= 0)) fail('--warmup needs an integer >= 0'); break;
      case '--threads': o.threads = positiveInt(value(), flag); break;
      case '--cases': {
        const names = value().split(',');
        for (const n of names) if (!CASES.some((c) => c.name === n)) fail(`--cases: unknown case '${n}'`);
        o.cases = names as CaseName[];
        break;
      }
      case '--json': o.json = value(); break;
      case '--help':
      case '-h':
        console.log(USAGE);
        process.exit(0);
        break;
      default: fail(`unknown argument '${a}'`);
    }
  }
  if (!/^(cpu|cuda(:\d+)?)$/.test(o.device)) fail(`--device: '${o.device}' is not cpu, cuda or cuda:N`);
  const onCuda = o.device.startsWith('cuda');
  if (onCuda && !cuda.isAvailable()) {
    console.error(`bench: --device ${o.device} asked for, but CUDA is not available (libtorch ${buildInfo().torchVersion}, built with CUDA: ${buildInfo().builtWithCuda})`);
    process.exit(1);
  }
  if (o.dtypes.length === 0) o.dtypes = onCuda ? ['float32', 'bfloat16'] : ['float32'];
  return o;
}

// ---- timing --------------------------------------------------------------------------------------

function cudaIndex(device: Device): number | null {
  if (!device.startsWith('cuda')) return null;
  const m = /^cuda:(\d+)$/.exec(device);
  return m ? Number(m[1]) : 0;
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * warmup + iters runs of step(); the timed milliseconds, synchronized on CUDA as engine-bench does.
 * The clock stops after one turn of the event loop: Node-API runs the finalizers of the handles that
 * the garbage collector found dead during the loop from a native immediate, so that cost of the
 * JavaScript handles is counted too (the warm-up's pending finalizers run before the clock starts).
 */
async function timeTs(warmup: number, iters: number, step: () => void, device: Device): Promise<{ ms: number; faults: number }> {
  const idx = cudaIndex(device);
  const sync = idx === null ? () => {} : () => cuda.synchronize(idx);
  for (let i = 0; i < warmup; i++) step();
  sync();
  await yieldToLoop();
  const f0 = process.resourceUsage().minorPageFault;
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) step();
  sync();
  await yieldToLoop();
  const ms = performance.now() - t0;
  return { ms, faults: process.resourceUsage().minorPageFault - f0 };
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..'); // dist/bench -> repo
const cppBench = process.env.IMAGIC_ENGINE_BENCH ?? path.join(root, 'build', 'Release', 'engine-bench');

interface CppResult {
  name: string;
  iters: number;
  threads: number;
  total_ms: number;
  ms_per_iter?: number;
  us_per_call?: number;
  minor_faults_per_iter: number;
  error?: string;
}

/**
 * One engine-bench process in --serve mode for the whole run: it runs one case per request, so the
 * C++ side, like this process, runs each case in a warm process that has run the cases before it
 * (a fresh process per run measured the large ops differently: glibc's heap is in another state).
 */
class CppBench {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private waiter: ((line: string | null) => void) | null = null;
  private stderr = '';
  private exited = false;

  constructor(o: Options) {
    const args = ['--serve', '--device', o.device, '--threads', String(o.threads), '--warmup', String(o.warmup)];
    this.child = spawn(cppBench, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    const deliver = (line: string | null) => {
      const w = this.waiter;
      this.waiter = null;
      if (w) w(line);
      else if (line !== null) this.lines.push(line);
    };
    createInterface({ input: this.child.stdout }).on('line', (l) => deliver(l));
    this.child.on('exit', () => {
      this.exited = true;
      deliver(null);
    });
    this.child.on('error', (e) => {
      this.stderr += e.message;
      this.exited = true;
      deliver(null);
    });
  }

  private next(): Promise<Record<string, unknown>> {
    const parse = (line: string | null) => {
      if (line === null) throw new Error(`engine-bench (${cppBench}) ended unexpectedly${this.stderr ? `:\n${this.stderr}` : ''}`);
      return JSON.parse(line) as Record<string, unknown>;
    };
    if (this.lines.length > 0) return Promise.resolve(parse(this.lines.shift()!));
    if (this.exited) return Promise.resolve().then(() => parse(null));
    return new Promise((resolve, reject) => {
      this.waiter = (line) => {
        try {
          resolve(parse(line));
        } catch (e) {
          reject(e);
        }
      };
    });
  }

  /** The info line engine-bench prints first (torch version, threads). */
  info(): Promise<Record<string, unknown>> {
    return this.next();
  }

  async run(name: CppCase, dtype: DType, iters: number): Promise<CppResult> {
    this.child.stdin.write(`${name} ${dtype} ${iters}\n`);
    const res = (await this.next()) as unknown as CppResult;
    if (res.error !== undefined) throw new Error(`engine-bench ${name} ${dtype} ${iters}: ${res.error}`);
    if (res.name !== name) throw new Error(`engine-bench answered ${JSON.stringify(res)} to ${name}`);
    return res;
  }

  close(): void {
    this.child.stdin.end('quit\n');
  }
}

/** One run of a case: ms per iteration (large ops) or µs per call (small), and page faults per iteration. */
interface Sample {
  value: number;
  faults: number;
}

/** One TypeScript run of a case. */
async function runTs(spec: CaseSpec, o: Options, dtype: DType, iters: number): Promise<Sample> {
  const live = liveTensors();
  const p = prepare(spec.name, o.device, spec.kind === 'small' ? 'float32' : dtype);
  const warmup = spec.kind === 'small' ? Math.max(1, Math.floor(iters / 10)) : o.warmup;
  let t: { ms: number; faults: number };
  try {
    t = await timeTs(warmup, iters, p.step, o.device);
  } finally {
    p.teardown();
  }
  if (liveTensors() !== live) throw new Error(`${spec.name}: ${liveTensors() - live} tensors leaked by the TypeScript case`);
  return { value: spec.kind === 'small' ? (t.ms * 1e3) / iters : t.ms / iters, faults: t.faults / iters };
}

// ---- statistics and report -----------------------------------------------------------------------

interface Stats {
  best: number;
  median: number;
  worst: number;
  samples: number[];
}

function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { best: s[0]!, median, worst: s[s.length - 1]!, samples };
}

interface Row {
  case: CaseName;
  what: string;
  device: Device;
  dtype: DType;
  unit: 'ms/iter' | 'us/call';
  iters: number;
  cpp: Stats;
  ts: Stats;
  /** (TS - C++) / C++ in percent, from the best rounds and from the medians. */
  overheadBestPct: number;
  overheadMedianPct: number;
  /** Per round, TS / C++ - 1 in percent (the runs of a round are adjacent in time). */
  overheadPerRoundPct: number[];
  /**
   * Minor page faults per iteration (medians of the rounds): a large op whose outputs land in fresh
   * memory each iteration pays for it here (see bench/README.md, "heap fragmentation").
   */
  faultsPerIter: { cpp: number; ts: number; cppPerRound: number[]; tsPerRound: number[] };
  /** Nominal GFLOP/s of the best rounds (large ops). */
  gflops?: { cpp: number; ts: number };
  goal: string;
  goalMet: boolean;
}

const pct = (ts: number, cpp: number) => ((ts - cpp) / cpp) * 100;

function fmt(v: number, unit: Row['unit']): string {
  if (unit === 'us/call') return v.toFixed(3);
  return v >= 100 ? v.toFixed(1) : v.toFixed(2);
}
const fmtPct = (p: number) => `${p >= 0 ? '+' : ''}${p.toFixed(1)}%`;

function table(rows: Row[]): string {
  const head = ['case', 'dtype', 'unit', 'C++ best', 'TS best', 'overhead (best)', 'C++ median', 'TS median', 'overhead (median)', 'goal'];
  const body = rows.map((r) => [
    r.case,
    r.dtype,
    r.unit,
    fmt(r.cpp.best, r.unit),
    fmt(r.ts.best, r.unit),
    fmtPct(r.overheadBestPct),
    fmt(r.cpp.median, r.unit),
    fmt(r.ts.median, r.unit),
    fmtPct(r.overheadMedianPct),
    `${r.goal}: ${r.goalMet ? 'met' : 'NOT met'}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i < 3 || i === 9 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(head), `|${widths.map((w, i) => (i < 3 || i === 9 ? `-${'-'.repeat(w)}-` : `-${'-'.repeat(w)}:`)).join('|')}|`, ...body.map(line)].join('\n');
}

function cpuModel(): string {
  return os.cpus()[0]?.model.trim() ?? 'unknown CPU';
}

// ---- main ----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (!existsSync(cppBench)) {
    console.error(`bench: ${cppBench} is missing: build it with \`node scripts/setup.mjs --bench\` (\`npm run bench\` does this first)`);
    process.exit(1);
  }
  setNumThreads(o.threads);
  manualSeed(0);
  const info = buildInfo();
  const started = Date.now();
  const loadStart = os.loadavg()[0]!;
  const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
  log(`libtorch ${info.torchVersion}, Node ${process.versions.node}, ${cpuModel()} (${os.availableParallelism()} CPUs), ` +
    `device ${o.device}, ${o.threads} intra-op threads, ${o.rounds} rounds`);

  const cppBenchProcess = new CppBench(o);
  const cppInfo = await cppBenchProcess.info();
  if (cppInfo.threads !== o.threads) throw new Error(`engine-bench runs ${String(cppInfo.threads)} threads, not ${o.threads}`);
  if (cppInfo.torch_version !== info.torchVersion) {
    throw new Error(`engine-bench links libtorch ${String(cppInfo.torch_version)}, the addon ${info.torchVersion}: rebuild with \`node scripts/setup.mjs --bench\``);
  }

  const rows: Row[] = [];
  const cppSmall = new Map<string, Sample[]>(); // add_small C++ samples, shared by add_small_tidy
  for (const [di, dtype] of o.dtypes.entries()) {
    for (const spec of CASES) {
      if (!o.cases.includes(spec.name)) continue;
      // The small op is float32 whatever --dtype says: run it with the first dtype only.
      if (spec.kind === 'small' && di > 0) continue;
      const rowDtype: DType = spec.kind === 'small' ? 'float32' : dtype;
      const iters = spec.kind === 'small' ? o.calls : (o.iters ?? spec.iters);
      const cppSamples: Sample[] = [];
      const tsSamples: Sample[] = [];
      const shared = spec.cpp !== spec.name ? cppSmall.get(spec.cpp) : undefined;
      for (let r = 0; r < o.rounds; r++) {
        const cppRun = async (): Promise<void> => {
          const reused = shared?.[r];
          if (reused !== undefined) {
            cppSamples.push(reused);
            return;
          }
          const res = await cppBenchProcess.run(spec.cpp, rowDtype, iters);
          cppSamples.push({ value: spec.kind === 'small' ? res.us_per_call! : res.ms_per_iter!, faults: res.minor_faults_per_iter });
        };
        const tsRun = async (): Promise<void> => void tsSamples.push(await runTs(spec, o, rowDtype, iters));
        if (r % 2 === 0) {
          await cppRun();
          await tsRun();
        } else {
          await tsRun();
          await cppRun();
        }
        await yieldToLoop(); // lets pending Node-API finalizers run between timed runs
      }
      if (spec.name === spec.cpp) cppSmall.set(spec.cpp, cppSamples);
      const cpp = stats(cppSamples.map((x) => x.value));
      const ts = stats(tsSamples.map((x) => x.value));
      const unit = spec.kind === 'small' ? 'us/call' : 'ms/iter';
      const row: Row = {
        case: spec.name,
        what: spec.what,
        device: o.device,
        dtype: rowDtype,
        unit,
        iters,
        cpp,
        ts,
        overheadBestPct: pct(ts.best, cpp.best),
        overheadMedianPct: pct(ts.median, cpp.median),
        overheadPerRoundPct: tsSamples.map((t, i) => pct(t.value, cppSamples[i]!.value)),
        faultsPerIter: {
          cpp: stats(cppSamples.map((x) => x.faults)).median,
          ts: stats(tsSamples.map((x) => x.faults)).median,
          cppPerRound: cppSamples.map((x) => x.faults),
          tsPerRound: tsSamples.map((x) => x.faults),
        },
        goal: spec.kind === 'small' ? 'TS < 5 us/call' : 'TS within 5%',
        // Judged on the best rounds: other load on the machine only ever slows a run down.
        goalMet: spec.kind === 'small' ? ts.best < 5 : pct(ts.best, cpp.best) <= 5,
      };
      if (spec.kind === 'large') {
        row.gflops = { cpp: spec.flops / (cpp.best * 1e-3) / 1e9, ts: spec.flops / (ts.best * 1e-3) / 1e9 };
      }
      rows.push(row);
      log(`${spec.name} ${rowDtype}: C++ ${fmt(cpp.median, unit)} ${unit}, TS ${fmt(ts.median, unit)} ${unit} ` +
        `(median of ${o.rounds}; ${fmtPct(row.overheadMedianPct)})`);
    }
  }

  cppBenchProcess.close();
  const seconds = (Date.now() - started) / 1000;
  console.log(`\nimagic engine benchmarks: ${o.device}, libtorch ${info.torchVersion}, Node ${process.versions.node}, ` +
    `${cpuModel()}, ${o.threads} threads, ${o.rounds} interleaved rounds (${seconds.toFixed(0)} s)\n`);
  console.log(table(rows));
  const large = rows.filter((r) => r.unit === 'ms/iter' && r.gflops);
  if (large.length > 0) {
    console.log(`\nGFLOP/s (best rounds): ${large.map((r) => `${r.case} ${r.dtype} C++ ${r.gflops!.cpp.toFixed(0)} / TS ${r.gflops!.ts.toFixed(0)}`).join('; ')}`);
  }
  if (large.length > 0) {
    console.log(`page faults per iteration (medians): ${large.map((r) => `${r.case} ${r.dtype} C++ ${r.faultsPerIter.cpp.toFixed(0)} / TS ${r.faultsPerIter.ts.toFixed(0)}`).join('; ')}`);
  }
  const small = rows.filter((r) => r.unit === 'us/call');
  if (small.length > 0) {
    console.log(`calls/s (best rounds): ${small.map((r) => `${r.case} C++ ${(1e6 / r.cpp.best / 1e6).toFixed(2)}M / TS ${(1e6 / r.ts.best / 1e6).toFixed(2)}M`).join('; ')}`);
  }
  console.log('\noverhead = (TS - C++) / C++; best = fastest of the rounds, median = median of the rounds.\n' +
    'Goals (judged on the best rounds): large ops within 5% of C++; small-op dispatch under 5 us per call from TS.');
  console.log(`load average (1 min) at start ${loadStart.toFixed(2)}, at end ${os.loadavg()[0]!.toFixed(2)}`);
  const noisy = rows.filter((r) => r.cpp.median > 1.2 * r.cpp.best || r.ts.median > 1.2 * r.ts.best).map((r) => `${r.case} ${r.dtype}`);
  if (noisy.length > 0) {
    console.log(`warning: medians more than 20% above the best round (other load on the machine?): ${noisy.join(', ')}; ` +
      'rerun on a quiet machine, or with more --rounds');
  }

  if (o.json !== null) {
    const out = {
      meta: {
        date: new Date().toISOString(),
        torchVersion: info.torchVersion,
        node: process.versions.node,
        cpu: cpuModel(),
        cpus: os.availableParallelism(),
        device: o.device,
        threads: o.threads,
        rounds: o.rounds,
        warmup: o.warmup,
        seconds,
        loadAverage1m: { start: loadStart, end: os.loadavg()[0]! },
      },
      results: rows,
    };
    writeFileSync(o.json, `${JSON.stringify(out, null, 2)}\n`);
    log(`wrote ${o.json}`);
  }
}

main().catch((e: unknown) => {
  console.error(`bench: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  process.exit(1);
});
