// EdgeFed training kernels as a Node-API addon: gemm through OpenBLAS, the rest as plain loops that
// the compiler vectorises. Mirrors src/nn/kernels-js.ts: same semantics, same error messages, and the
// elementwise kernels give the same bits (double intermediates, no FMA contraction: see binding.gyp).
// Every argument is checked here, before any write, so a bad call from JS throws instead of reading
// or writing out of bounds.
#define NAPI_VERSION 8
#include <node_api.h>
#include <cblas.h>

#include "napi-args.h"
#include "softmax-row.h"

#include <climits>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

// Declared here too in case the cblas.h found is not OpenBLAS's own (these are OpenBLAS extensions).
extern "C" void openblas_set_num_threads(int num_threads);
extern "C" int openblas_get_num_threads(void);
extern "C" char* openblas_get_config(void);
extern "C" char* openblas_get_corename(void);
// Exported only by DYNAMIC_ARCH builds (Debian's is one): re-running the core selection with
// OPENBLAS_CORETYPE set is how the library itself applies the variable at load. Weak, so a single-target
// OpenBLAS still links and the addon just reports that the core cannot be changed.
extern "C" void gotoblas_dynamic_init(void) __attribute__((weak));
extern "C" void gotoblas_dynamic_quit(void) __attribute__((weak));

namespace {

using namespace edgefed;

napi_value Gemm(napi_env env, napi_callback_info info) {
  const char* fn = "gemm";
  napi_value a_[10];
  if (!args(env, info, a_)) return nullptr;
  bool ta, tb;
  int64_t m, n, k;
  double alpha, beta;
  F32 a, b, c;
  if (!get_bool(env, a_[0], fn, "transA", &ta) || !get_bool(env, a_[1], fn, "transB", &tb) ||
      !get_dim(env, a_[2], fn, "m", &m) || !get_dim(env, a_[3], fn, "n", &n) || !get_dim(env, a_[4], fn, "k", &k) ||
      !get_num(env, a_[5], fn, "alpha", &alpha) || !get_num(env, a_[8], fn, "beta", &beta) ||
      !get_f32(env, a_[6], fn, "a", &a) || !get_f32(env, a_[7], fn, "b", &b) || !get_f32(env, a_[9], fn, "c", &c) ||
      !need(env, fn, "a", a.len, m * k, "m*k") || !need(env, fn, "b", b.len, k * n, "k*n") ||
      !need(env, fn, "c", c.len, m * n, "m*n")) {
    return nullptr;
  }
  if (overlaps(c.data, m * n, a.data, m * k) || overlaps(c.data, m * n, b.data, k * n)) {
    throw_msg(env, false, "gemm: c must not overlap a or b");
    return nullptr;
  }
  if (m == 0 || n == 0) return nullptr;
  if (alpha == 0 || k == 0) {
    // BLAS semantics without calling BLAS: A and B are not read; beta = 0 writes zeros.
    const int64_t len = m * n;
    float* cd = c.data;
    if (beta == 0) {
      for (int64_t i = 0; i < len; i++) cd[i] = 0.0f;
    } else if (beta != 1) {
      for (int64_t i = 0; i < len; i++) cd[i] = static_cast<float>(cd[i] * beta);
    }
    return nullptr;
  }
  // Row-major: A is m x k (lda = k), or k x m when transposed (lda = m); B is k x n (ldb = n), or
  // n x k when transposed (ldb = k); C is m x n (ldc = n).
  const int lda = static_cast<int>(ta ? m : k);
  const int ldb = static_cast<int>(tb ? k : n);
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), static_cast<float>(alpha), a.data, lda,
              b.data, ldb, static_cast<float>(beta), c.data, static_cast<int>(n));
  return nullptr;
}

napi_value BiasAct(napi_env env, napi_callback_info info) {
  const char* fn = "biasAct";
  napi_value a_[5];
  if (!args(env, info, a_)) return nullptr;
  F32 c, bias;
  int64_t m, n;
  bool relu;
  if (!get_f32(env, a_[0], fn, "c", &c) || !get_f32(env, a_[1], fn, "bias", &bias) ||
      !get_dim(env, a_[2], fn, "m", &m) || !get_dim(env, a_[3], fn, "n", &n) ||
      !get_bool(env, a_[4], fn, "relu", &relu) || !need(env, fn, "c", c.len, m * n, "m*n") ||
      !need(env, fn, "bias", bias.len, n, "n")) {
    return nullptr;
  }
  const float* bd = bias.data;
  for (int64_t i = 0; i < m; i++) {
    float* row = c.data + i * n;
    if (relu) {
      for (int64_t j = 0; j < n; j++) {
        const float x = row[j] + bd[j];
        row[j] = x < 0.0f ? 0.0f : x;  // keeps NaN, like the JS side
      }
    } else {
      for (int64_t j = 0; j < n; j++) row[j] += bd[j];
    }
  }
  return nullptr;
}

napi_value ReluBackward(napi_env env, napi_callback_info info) {
  const char* fn = "reluBackward";
  napi_value a_[2];
  if (!args(env, info, a_)) return nullptr;
  F32 delta, act;
  if (!get_f32(env, a_[0], fn, "delta", &delta) || !get_f32(env, a_[1], fn, "act", &act) ||
      !need(env, fn, "act", act.len, delta.len, "delta.length")) {
    return nullptr;
  }
  float* d = delta.data;
  const float* x = act.data;
  for (int64_t i = 0; i < delta.len; i++) d[i] = x[i] <= 0.0f ? 0.0f : d[i];
  return nullptr;
}

napi_value ColSum(napi_env env, napi_callback_info info) {
  const char* fn = "colSum";
  napi_value a_[4];
  if (!args(env, info, a_)) return nullptr;
  F32 a, out;
  int64_t m, n;
  if (!get_f32(env, a_[0], fn, "a", &a) || !get_dim(env, a_[1], fn, "m", &m) || !get_dim(env, a_[2], fn, "n", &n) ||
      !get_f32(env, a_[3], fn, "out", &out) || !need(env, fn, "a", a.len, m * n, "m*n") ||
      !need(env, fn, "out", out.len, n, "n")) {
    return nullptr;
  }
  float* o = out.data;
  for (int64_t j = 0; j < n; j++) o[j] = 0.0f;
  for (int64_t i = 0; i < m; i++) {
    const float* row = a.data + i * n;
    for (int64_t j = 0; j < n; j++) o[j] += row[j];
  }
  return nullptr;
}

napi_value SoftmaxXent(napi_env env, napi_callback_info info) {
  const char* fn = "softmaxXent";
  napi_value a_[6];
  if (!args(env, info, a_)) return nullptr;
  F32 logits, delta;
  I32 labels;
  int64_t m, n;
  double scale;
  if (!get_f32(env, a_[0], fn, "logits", &logits) || !get_i32(env, a_[1], fn, "labels", &labels) ||
      !get_dim(env, a_[2], fn, "m", &m) || !get_dim(env, a_[3], fn, "n", &n) ||
      !get_num(env, a_[4], fn, "scale", &scale) || !get_f32(env, a_[5], fn, "delta", &delta) ||
      !need(env, fn, "logits", logits.len, m * n, "m*n") || !need(env, fn, "labels", labels.len, m, "m") ||
      !need(env, fn, "delta", delta.len, m * n, "m*n")) {
    return nullptr;
  }
  for (int64_t i = 0; i < m; i++) {
    const int32_t l = labels.data[i];
    if (l < 0 || l >= n) {
      throw_msg(env, false, "%s: labels[%lld] = %d is out of range [0, %lld)", fn, static_cast<long long>(i),
                static_cast<int>(l), static_cast<long long>(n));
      return nullptr;
    }
  }
  double loss = 0;
  int64_t correct = 0;
  for (int64_t i = 0; i < m; i++) {
    // logits may alias delta (softmax in place)
    if (softmax_xent_row(logits.data + i * n, delta.data + i * n, n, labels.data[i], scale, &loss)) correct++;
  }
  return batch_result(env, loss, static_cast<double>(correct));
}

napi_value Adam(napi_env env, napi_callback_info info) {
  const char* fn = "adam";
  napi_value a_[9];
  if (!args(env, info, a_)) return nullptr;
  F32 w, g, m, v;
  double lr, b1, b2, eps, step;
  if (!get_f32(env, a_[0], fn, "w", &w) || !get_f32(env, a_[1], fn, "g", &g) || !get_f32(env, a_[2], fn, "m", &m) ||
      !get_f32(env, a_[3], fn, "v", &v) || !get_num(env, a_[4], fn, "lr", &lr) ||
      !get_num(env, a_[5], fn, "beta1", &b1) || !get_num(env, a_[6], fn, "beta2", &b2) ||
      !get_num(env, a_[7], fn, "eps", &eps) || !get_num(env, a_[8], fn, "step", &step)) {
    return nullptr;
  }
  if (!(step >= 1 && step == std::floor(step) && step <= 9007199254740991.0)) {
    throw_msg(env, false, "%s: step must be a positive integer, got %.17g", fn, step);
    return nullptr;
  }
  const int64_t len = w.len;
  if (!need(env, fn, "g", g.len, len, "w.length") || !need(env, fn, "m", m.len, len, "w.length") ||
      !need(env, fn, "v", v.len, len, "w.length")) {
    return nullptr;
  }
  const double bc1 = 1 - std::pow(b1, step), bc2 = 1 - std::pow(b2, step);
  const double ob1 = 1 - b1, ob2 = 1 - b2;
  float* wd = w.data;
  const float* gd = g.data;
  float* md = m.data;
  float* vd = v.data;
  for (int64_t i = 0; i < len; i++) {
    const double gi = gd[i];
    // The moments are stored as float32 and the update uses the stored values (as tfjs does).
    const float mi = static_cast<float>(b1 * md[i] + ob1 * gi);
    const float vi = static_cast<float>(b2 * vd[i] + ob2 * gi * gi);
    md[i] = mi;
    vd[i] = vi;
    wd[i] = static_cast<float>(wd[i] - lr * (mi / bc1) / (std::sqrt(vi / bc2) + eps));
  }
  return nullptr;
}

napi_value Sgd(napi_env env, napi_callback_info info) {
  const char* fn = "sgd";
  napi_value a_[5];
  if (!args(env, info, a_)) return nullptr;
  F32 w, g, vel;
  double lr, mu;
  if (!get_f32(env, a_[0], fn, "w", &w) || !get_f32(env, a_[1], fn, "g", &g) || !get_num(env, a_[2], fn, "lr", &lr) ||
      !get_num(env, a_[3], fn, "momentum", &mu)) {
    return nullptr;
  }
  if (!(mu >= 0)) {
    throw_msg(env, false, "%s: momentum must be >= 0, got %.17g", fn, mu);
    return nullptr;
  }
  const int64_t len = w.len;
  if (!need(env, fn, "g", g.len, len, "w.length")) return nullptr;
  float* wd = w.data;
  const float* gd = g.data;
  if (mu > 0) {
    bool is_ta = false;
    napi_typedarray_type t = napi_int8_array;
    if (napi_is_typedarray(env, a_[4], &is_ta) == napi_ok && is_ta) {
      napi_get_typedarray_info(env, a_[4], &t, nullptr, nullptr, nullptr, nullptr);
    }
    if (!is_ta || t != napi_float32_array) {
      throw_msg(env, true, "%s: vel must be a Float32Array when momentum > 0, got %s", fn, describe(env, a_[4]));
      return nullptr;
    }
    if (!get_f32(env, a_[4], fn, "vel", &vel) || !need(env, fn, "vel", vel.len, len, "w.length")) return nullptr;
    float* vd = vel.data;
    for (int64_t i = 0; i < len; i++) {
      const float vi = static_cast<float>(mu * vd[i] + gd[i]);
      vd[i] = vi;
      wd[i] = static_cast<float>(wd[i] - lr * vi);
    }
  } else {
    for (int64_t i = 0; i < len; i++) wd[i] = static_cast<float>(wd[i] - lr * gd[i]);
  }
  return nullptr;
}

// Copies rows order[start .. start + m) of x (features floats each) into out. The rows lie scattered over a dataset
// much larger than the caches, so the copy waits on memory: taking one cache line of several rows in turn keeps
// several misses in flight, where a row-by-row memcpy waits on one row at a time (about 1.5x faster measured).
napi_value GatherRows(napi_env env, napi_callback_info info) {
  const char* fn = "gatherRows";
  napi_value a_[6];
  if (!args(env, info, a_)) return nullptr;
  F32 x, out;
  I32 order;
  int64_t features, start, m;
  if (!get_f32(env, a_[0], fn, "x", &x) || !get_dim(env, a_[1], fn, "features", &features) ||
      !get_i32(env, a_[2], fn, "order", &order) || !get_dim(env, a_[3], fn, "start", &start) ||
      !get_dim(env, a_[4], fn, "m", &m) || !get_f32(env, a_[5], fn, "out", &out) ||
      !need(env, fn, "order", order.len, start + m, "start+m") || !need(env, fn, "out", out.len, m * features, "m*features")) {
    return nullptr;
  }
  if (overlaps(out.data, m * features, x.data, x.len)) {
    throw_msg(env, false, "%s: out must not overlap x", fn);
    return nullptr;
  }
  const int64_t rows = features == 0 ? 0 : x.len / features;
  const int32_t* picked = order.data + start;
  for (int64_t i = 0; i < m; i++) {
    if (picked[i] < 0 || picked[i] >= rows) {
      throw_msg(env, false, "%s: order[%lld] = %d is not a row of x (which has %lld)", fn,
                static_cast<long long>(start + i), static_cast<int>(picked[i]), static_cast<long long>(rows));
      return nullptr;
    }
  }
  constexpr int64_t kRowsAtOnce = 8, kLine = 16;  // floats per 64-byte cache line
  for (int64_t i0 = 0; i0 < m; i0 += kRowsAtOnce) {
    const int64_t n = m - i0 < kRowsAtOnce ? m - i0 : kRowsAtOnce;
    for (int64_t c = 0; c < features; c += kLine) {
      const int64_t len = features - c < kLine ? features - c : kLine;
      for (int64_t r = 0; r < n; r++) {
        float* to = out.data + (i0 + r) * features + c;
        const float* from = x.data + picked[i0 + r] * features + c;
        if (len == kLine) std::memcpy(to, from, kLine * 4);  // a constant size: inlined as vector moves
        else std::memcpy(to, from, len * 4);
      }
    }
  }
  return nullptr;
}

// Diagnostics: which OpenBLAS build and core type this process runs.
napi_value Info(napi_env env, napi_callback_info) {
  napi_value result, config, core, threads;
  if (napi_create_object(env, &result) != napi_ok ||
      napi_create_string_utf8(env, openblas_get_config(), NAPI_AUTO_LENGTH, &config) != napi_ok ||
      napi_create_string_utf8(env, openblas_get_corename(), NAPI_AUTO_LENGTH, &core) != napi_ok ||
      napi_create_int32(env, openblas_get_num_threads(), &threads) != napi_ok ||
      napi_set_named_property(env, result, "config", config) != napi_ok ||
      napi_set_named_property(env, result, "corename", core) != napi_ok ||
      napi_set_named_property(env, result, "threads", threads) != napi_ok) {
    return nullptr;
  }
  return result;
}

// The OpenBLAS core is process-wide state shared by every worker thread, so one thread chooses it
// while the others wait: beginCoreSelection() takes the lock and returns null when the caller must choose
// (it then calls useCore as needed and endCoreSelection(summary)), or returns the summary already stored.
std::mutex selection_lock;
bool selection_done = false;
std::string selection_summary;

napi_value BeginCoreSelection(napi_env env, napi_callback_info) {
  selection_lock.lock();
  napi_value out;
  if (!selection_done) {
    napi_get_null(env, &out);
    return out;  // the lock stays held until endCoreSelection
  }
  napi_create_string_utf8(env, selection_summary.c_str(), selection_summary.size(), &out);
  selection_lock.unlock();
  return out;
}

napi_value EndCoreSelection(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, argv)) return nullptr;
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], nullptr, 0, &len) != napi_ok) {
    throw_msg(env, true, "endCoreSelection: summary must be a string, got %s", describe(env, argv[0]));
    return nullptr;
  }
  std::string summary(len, '\0');
  napi_get_value_string_utf8(env, argv[0], summary.data(), len + 1, &len);
  selection_summary = summary;
  selection_done = true;
  selection_lock.unlock();
  return nullptr;
}

// Re-runs OpenBLAS's own core selection with OPENBLAS_CORETYPE = name, then restores the variable so child
// processes choose for themselves. Only called under the selection lock, before any kernel runs.
napi_value UseCore(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, argv)) return nullptr;
  char name[32];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok) {
    throw_msg(env, true, "useCore: name must be a string, got %s", describe(env, argv[0]));
    return nullptr;
  }
  if (gotoblas_dynamic_init == nullptr || gotoblas_dynamic_quit == nullptr) {
    throw_msg(env, false, "useCore: this OpenBLAS was built without DYNAMIC_ARCH, its core cannot be changed");
    return nullptr;
  }
  const char* before = std::getenv("OPENBLAS_CORETYPE");
  const std::string saved = before ? before : "";
  const bool had = before != nullptr;
  const int threads = openblas_get_num_threads();
  setenv("OPENBLAS_CORETYPE", name, 1);
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
  if (had) setenv("OPENBLAS_CORETYPE", saved.c_str(), 1);
  else unsetenv("OPENBLAS_CORETYPE");
  openblas_set_num_threads(threads);
  napi_value out;
  napi_create_string_utf8(env, openblas_get_corename(), NAPI_AUTO_LENGTH, &out);
  return out;
}

// BLAS threads for this process (every thread's gemm shares them).
napi_value SetThreads(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, argv)) return nullptr;
  int64_t n;
  if (!get_dim(env, argv[0], "setThreads", "threads", &n)) return nullptr;
  if (n < 1 || n > 1024) {
    throw_msg(env, false, "setThreads: threads must be in [1, 1024], got %lld", static_cast<long long>(n));
    return nullptr;
  }
  openblas_set_num_threads(static_cast<int>(n));
  return nullptr;
}

}  // namespace

namespace edgefed {
bool define_dense_team(napi_env env, napi_value exports);  // dense-team.cc
}

NAPI_MODULE_INIT() {
  // One BLAS thread by default: results do not depend on the core count, and federated simulation already
  // runs one training per core, where BLAS threads would only contend. Once per process: a worker thread
  // loading the addon later must not undo a setThreads() call.
  static std::once_flag one_thread;
  std::call_once(one_thread, [] { openblas_set_num_threads(1); });
  const napi_property_descriptor props[] = {
      {"gemm", nullptr, Gemm, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"biasAct", nullptr, BiasAct, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"reluBackward", nullptr, ReluBackward, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"colSum", nullptr, ColSum, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"softmaxXent", nullptr, SoftmaxXent, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"adam", nullptr, Adam, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"sgd", nullptr, Sgd, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"gatherRows", nullptr, GatherRows, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"beginCoreSelection", nullptr, BeginCoreSelection, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"endCoreSelection", nullptr, EndCoreSelection, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"useCore", nullptr, UseCore, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return nullptr;
  if (!edgefed::define_dense_team(env, exports)) return nullptr;
  return exports;
}
