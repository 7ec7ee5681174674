// engine-bench: the C++ baseline for `npm run bench` (bench/engine.ts). It times the same cases, with
// the same op sequences and iteration counts, as the TypeScript side does through the engine API, so
// that the difference between the two is the cost of the JavaScript layer (Node-API crossing, handle
// creation, tidy()/dispose) and nothing else.
//
//   engine-bench [--device cpu|cuda|cuda:N] [--dtype float32|bfloat16] [--iters N] [--calls N]
//                [--warmup N] [--threads N] [--case NAME[,NAME...]] [--seed N] [--serve]
//
// Cases (all on --device in --dtype; inputs drawn with at::randn from --seed):
//   matmul_fwd      y = at::matmul(a, b)                     a, b [1024, 1024]
//   matmul_fwd_bwd  at::matmul(a, b).sum().backward(); then a.grad = b.grad = undefined
//                   (a and b require grad; grads set to none each step, as zero_grad(set_to_none))
//   conv2d_fwd      y = at::conv2d(x, w, {}, 1, 1)           x [1, 320, 64, 64], w [320, 320, 3, 3], no bias
//   conv2d_fwd_bwd  at::conv2d(x, w, ...).sum().backward(); then x.grad = w.grad = undefined
//   add_small       c = at::add(a, b)                        a, b [1] float32 (always), calls per second
// Every case runs --warmup iterations first (default 2; small op: --calls / 10), then --iters timed
// iterations (default per case, see defaultIters) or, for the small op, --calls (default 200000).
// --threads sets at::set_num_threads (default: libtorch's own at::get_num_threads()). On CUDA the
// device is synchronized before each clock read. --dtype float16 is accepted too.
//
// Output: one JSON object per line. First {"name":"info",...}, then one per case with name, device,
// dtype, iters, warmup, threads, total_ms, minor_faults_per_iter (page faults of the process in the
// timed loop) and ms_per_iter + gflops (large ops) or us_per_call + calls_per_s (small op). With --serve it runs the cases asked for on stdin instead (see serve()).
//
// Device-generic on purpose: only ATen APIs (at::hasCUDA, the CUDA hooks) so that the same source
// builds against CPU-only and CUDA libtorch without CUDA headers.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/version.h>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string device = "cpu";
  std::string dtype = "float32";
  int64_t iters = -1;      // large ops; -1: per-case default
  int64_t calls = 200000;  // small op
  int64_t warmup = 2;
  int threads = -1;        // -1: libtorch's default (at::get_num_threads())
  std::vector<std::string> cases;
  uint64_t seed = 0;
  bool serve = false;
};

const char* kAllCases[] = {"matmul_fwd", "matmul_fwd_bwd", "conv2d_fwd", "conv2d_fwd_bwd", "add_small"};

bool knownCase(const std::string& name) {
  for (const char* c : kAllCases) {
    if (name == c) return true;
  }
  return false;
}

// Default timed iterations per large case (0.3 to 0.5 s each on a 2-core CPU); the same
// defaults as bench/engine.ts, which passes its counts explicitly anyway.
int64_t defaultIters(const std::string& name) {
  if (name == "matmul_fwd") return 25;
  if (name == "matmul_fwd_bwd") return 10;
  if (name == "conv2d_fwd") return 10;
  if (name == "conv2d_fwd_bwd") return 4;
  return 1;
}

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "engine-bench: %s\nusage: engine-bench [--device cpu|cuda|cuda:N] [--dtype float32|bfloat16] "
               "[--iters N] [--calls N] [--warmup N] [--threads N] [--case NAME[,NAME...]] [--seed N] [--serve]\n"
               "cases: matmul_fwd matmul_fwd_bwd conv2d_fwd conv2d_fwd_bwd add_small\n",
               msg);
  std::exit(2);
}

int64_t parseInt(const char* s, const char* what) {
  char* end = nullptr;
  long long v = std::strtoll(s, &end, 10);
  if (end == s || *end != '\0' || v < 0) usage((std::string("bad value for ") + what + ": " + s).c_str());
  return int64_t(v);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) usage((a + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--device") o.device = next();
    else if (a == "--dtype") o.dtype = next();
    else if (a == "--iters") o.iters = parseInt(next(), "--iters");
    else if (a == "--calls") o.calls = parseInt(next(), "--calls");
    else if (a == "--warmup") o.warmup = parseInt(next(), "--warmup");
    else if (a == "--threads") o.threads = int(parseInt(next(), "--threads"));
    else if (a == "--seed") o.seed = uint64_t(parseInt(next(), "--seed"));
    else if (a == "--serve") o.serve = true;
    else if (a == "--case") {
      std::stringstream ss(next());
      std::string item;
      while (std::getline(ss, item, ',')) {
        if (!knownCase(item)) usage(("unknown case '" + item + "'").c_str());
        o.cases.push_back(item);
      }
    } else if (a == "--help" || a == "-h") {
      usage("help");
    } else {
      usage(("unknown argument '" + a + "'").c_str());
    }
  }
  if (o.cases.empty()) o.cases.assign(std::begin(kAllCases), std::end(kAllCases));
  return o;
}

std::optional<at::ScalarType> parseDtype(const std::string& s) {
  if (s == "float32") return at::kFloat;
  if (s == "bfloat16") return at::kBFloat16;
  if (s == "float16") return at::kHalf;
  return std::nullopt;
}

using Clock = std::chrono::steady_clock;

struct Bench {
  c10::Device device;
  int threads;
  int64_t warmup;

  void sync() const {
    if (device.is_cuda()) at::detail::getCUDAHooks().deviceSynchronize(device.index());
  }

  static int64_t minorFaults() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return int64_t(ru.ru_minflt);
  }

  struct Timing {
    double ms;      // timed milliseconds (synchronized on CUDA)
    int64_t faults; // minor page faults of the process during the timed loop
  };

  // warmup + iters runs of step().
  Timing time(int64_t warm, int64_t iters, const std::function<void()>& step) const {
    for (int64_t i = 0; i < warm; i++) step();
    sync();
    const int64_t f0 = minorFaults();
    auto t0 = Clock::now();
    for (int64_t i = 0; i < iters; i++) step();
    sync();
    auto t1 = Clock::now();
    return {std::chrono::duration<double, std::milli>(t1 - t0).count(), minorFaults() - f0};
  }
};

// Runs one case and prints its JSON line. `iters` is the number of timed calls for add_small.
void run(const Bench& b, const std::string& name, const std::string& dtypeName, int64_t iters) {
  const auto dtype = parseDtype(dtypeName);
  if (!dtype) throw std::invalid_argument("unsupported dtype '" + dtypeName + "' (float32, bfloat16 or float16)");
  if (iters < 1) throw std::invalid_argument("iterations must be at least 1");
  const auto opts = at::TensorOptions().dtype(*dtype).device(b.device);
  auto printLarge = [&](int64_t n, Bench::Timing t, double flopsPerIter) {
    double per = t.ms / double(n);
    std::printf(
        "{\"name\":\"%s\",\"device\":\"%s\",\"dtype\":\"%s\",\"iters\":%lld,\"warmup\":%lld,\"threads\":%d,"
        "\"total_ms\":%.4f,\"ms_per_iter\":%.6f,\"gflops\":%.3f,\"minor_faults_per_iter\":%.1f}\n",
        name.c_str(), b.device.str().c_str(), dtypeName.c_str(), (long long)n, (long long)b.warmup, b.threads, t.ms,
        per, flopsPerIter / (per * 1e-3) / 1e9, double(t.faults) / double(n));
  };
  if (name == "matmul_fwd" || name == "matmul_fwd_bwd") {
    const int64_t n = 1024;
    const bool bwd = name == "matmul_fwd_bwd";
    auto a = at::randn({n, n}, opts);
    auto c = at::randn({n, n}, opts);
    if (bwd) {
      a.requires_grad_(true);
      c.requires_grad_(true);
    }
    auto t = b.time(b.warmup, iters, [&] {
      if (!bwd) {
        auto y = at::matmul(a, c);
      } else {
        auto y = at::matmul(a, c);
        auto s = y.sum();
        s.backward();
        a.mutable_grad().reset();
        c.mutable_grad().reset();
      }
    });
    printLarge(iters, t, 2.0 * n * n * n * (bwd ? 3.0 : 1.0));  // backward: two more matmuls
  } else if (name == "conv2d_fwd" || name == "conv2d_fwd_bwd") {
    const int64_t N = 1, C = 320, O = 320, H = 64, W = 64, K = 3;
    const bool bwd = name == "conv2d_fwd_bwd";
    auto x = at::randn({N, C, H, W}, opts);
    auto w = at::randn({O, C, K, K}, opts);
    if (bwd) {
      x.requires_grad_(true);
      w.requires_grad_(true);
    }
    // The engine's conv2d passes stride, padding and dilation as lists and groups explicitly.
    const std::vector<int64_t> stride{1, 1}, padding{1, 1}, dilation{1, 1};
    auto t = b.time(b.warmup, iters, [&] {
      if (!bwd) {
        auto y = at::conv2d(x, w, std::nullopt, stride, padding, dilation, 1);
      } else {
        auto y = at::conv2d(x, w, std::nullopt, stride, padding, dilation, 1);
        auto s = y.sum();
        s.backward();
        x.mutable_grad().reset();
        w.mutable_grad().reset();
      }
    });
    // 2 * N * O * H * W * C * K * K for the forward; the backward computes grad_input and grad_weight.
    printLarge(iters, t, 2.0 * N * O * H * W * C * K * K * (bwd ? 3.0 : 1.0));
  } else if (name == "add_small") {
    // Dispatch cost: two one-element float32 tensors on the device, whatever the dtype says.
    auto x = at::randn({1}, at::TensorOptions().dtype(at::kFloat).device(b.device));
    auto y = at::randn({1}, at::TensorOptions().dtype(at::kFloat).device(b.device));
    const int64_t warm = std::max<int64_t>(1, iters / 10);
    auto t = b.time(warm, iters, [&] { auto z = at::add(x, y); });
    double us = t.ms * 1e3 / double(iters);
    std::printf(
        "{\"name\":\"add_small\",\"device\":\"%s\",\"dtype\":\"float32\",\"iters\":%lld,\"warmup\":%lld,"
        "\"threads\":%d,\"total_ms\":%.4f,\"us_per_call\":%.6f,\"calls_per_s\":%.1f,\"minor_faults_per_iter\":%.3f}\n",
        b.device.str().c_str(), (long long)iters, (long long)warm, b.threads, t.ms, us, 1e6 / us,
        double(t.faults) / double(iters));
  } else {
    throw std::invalid_argument("unknown case '" + name + "'");
  }
  std::fflush(stdout);
}

std::string jsonEscape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (ch == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(ch) >= 0x20) {
      out += ch;
    }
  }
  return out;
}

// --serve: one request per stdin line, "<case> <dtype> <iters>", one JSON line back (an
// {"error":...} object when the request fails); ends at EOF or "quit". bench/engine.ts keeps one
// such process for the whole run, so that the C++ side, like the TypeScript side, runs every case in
// a warm process that has run the cases before it (allocator state matters for the large ops).
int serve(const Bench& b) {
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string name, dtype;
    long long iters = 0;
    if (!(in >> name)) continue;
    if (name == "quit") break;
    try {
      if (!(in >> dtype >> iters)) throw std::invalid_argument("expected '<case> <dtype> <iters>', got '" + line + "'");
      run(b, name, dtype, iters);
    } catch (const c10::Error& e) {
      std::printf("{\"error\":\"%s\"}\n", jsonEscape(e.what_without_backtrace()).c_str());
    } catch (const std::exception& e) {
      std::printf("{\"error\":\"%s\"}\n", jsonEscape(e.what()).c_str());
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  try {
    c10::Device device(o.device);
    if (device.is_cuda()) {
      if (!at::hasCUDA()) {
        std::fprintf(stderr, "engine-bench: device '%s' asked for, but CUDA is not available\n", o.device.c_str());
        return 1;
      }
      if (!device.has_index()) device = c10::Device(c10::kCUDA, 0);
    } else if (!device.is_cpu()) {
      usage(("unsupported device '" + o.device + "'").c_str());
    }
    if (!parseDtype(o.dtype)) usage(("unsupported dtype '" + o.dtype + "' (float32, bfloat16 or float16)").c_str());
    if (o.threads > 0) at::set_num_threads(o.threads);
    Bench b{device, at::get_num_threads(), o.warmup};
    at::manual_seed(o.seed);
    std::printf(
        "{\"name\":\"info\",\"torch_version\":\"%s\",\"device\":\"%s\",\"threads\":%d,\"cuda\":%s,\"warmup\":%lld}\n",
        TORCH_VERSION, device.str().c_str(), b.threads, at::hasCUDA() ? "true" : "false", (long long)o.warmup);
    std::fflush(stdout);
    if (o.serve) return serve(b);
    for (const auto& name : o.cases) run(b, name, o.dtype, name == "add_small" ? o.calls : o.iters >= 0 ? o.iters : defaultIters(name));
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "engine-bench: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
