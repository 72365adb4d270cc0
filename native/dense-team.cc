// One training step of a dense network (Dense layers, softmax cross-entropy or MSE) split over a persistent team
// of threads: the caller's thread plus threads - 1 native threads, meeting at barriers. Tensor parallel, not data
// parallel: every thread owns the same rows of each weight matrix (its slice of the layer's inputs) in the forward
// pass, the backward pass and the optimizer step, so those rows, their gradient and their optimizer state stay in
// one core's cache. Why it matters: a cache line another core has just written costs ~60 ns to fetch when the two
// cores share an L3 and ~230 ns when they do not (measured on the 2-core VM, whose host places its two vCPUs either
// way), and the first version, which split the forward pass by output columns, read half of W from the other core
// every step: on split caches two threads were no faster than one (seed MLP, 1.09x).
//   batch: with row indices, each thread gathers its own input columns of the batch (the only ones it reads);
//   forward, every layer: split by input rows r0:r1, each thread multiplies its columns of the layer's input by its
//   rows W[r0:r1, :] into a partial product; hidden layers: after a barrier each thread sums the partials of its
//   own columns (in thread order), adds the bias and activates: those columns are its input rows of the next
//   layer, so no barrier between them; top layer: each thread sums the partial logits of its batch rows, then their
//   softmax (or MSE) and delta;
//   backward: every thread computes the whole delta below the (narrow) top layer itself, then per hidden layer
//   its rows: dX[:, r0:r1] = dY W[r0:r1, :]^T (times the derivative of the activation below), then the same rows
//   of the weight gradient and their update; the top layer's rows are stepped last, once every thread has read
//   them. Bias: split by columns. No gradient is summed across threads.
// Each gemm is cblas_sgemm on a sub-block (leading dimensions, no copy), run single-threaded by the caller (the
// process keeps OpenBLAS at one thread). The split depends only on the thread count and the sizes, so a given
// count gives the same bits every run. Why not JS worker threads: a step of the seed MLP takes ~0.1-0.25 ms, less
// than what messages or Atomics.wait wake-ups between JS threads cost; here a barrier is a few atomics.
// Idle teams sleep: a wait spins for kSpinNs, then parks on a condition variable (no CPU between epochs). Past
// kYieldAfterNs of spinning it yields between checks: on a loaded device the partner is then likely preempted, and
// spinning would keep it off the core (measured on the shared 2-core machine at load 12: the MLP's epoch on 2
// threads went from 0.41x to 1.39x of one thread's wall time, the 2NN's from 0.13x to 0.60x).
#include <cblas.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <time.h>

#include "napi-args.h"
#include "softmax-row.h"

namespace edgefed {
namespace {

constexpr int64_t kSpinNs = 200000;
constexpr int64_t kYieldAfterNs = 5000;
// Column and row splits fall on multiples of 4 floats when every thread still gets some: whole SSE vectors for the
// gemm kernels, while the 2NN's 200 units still split 100/100 (a 16-float cache line would give 96/104, and a
// slower thread holds up every barrier; the rows two threads share at a boundary cost one cache line each).
constexpr int kAlign = 4;

enum class Act { kLinear, kRelu, kSigmoid, kTanh, kSoftmax };
enum class Loss { kXent, kMse };
enum class Opt { kSgd, kMomentum, kAdam };

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

int64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A counter threads wait on to change: spin first (a step's barriers are microseconds apart), then sleep. The
// waiter's sleepers++ and the bumper's value++ are both seq_cst, so one of them sees the other: no lost wake-up.
class Signal {
 public:
  uint32_t load() const { return value_.load(std::memory_order_acquire); }
  void bump() {
    value_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    }
  }
  void wait_change(uint32_t old) {
    const int64_t start = now_ns();
    for (uint32_t i = 1;; i++) {
      if (value_.load(std::memory_order_acquire) != old) return;
      cpu_relax();
      if ((i & 255) != 0) continue;
      const int64_t spun = now_ns() - start;
      if (spun > kSpinNs) break;
      // Past a barrier's usual length the partner is likely preempted (a loaded device): offer it this core.
      if (spun > kYieldAfterNs) std::this_thread::yield();
    }
    std::unique_lock<std::mutex> lock(mu_);
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    cv_.wait(lock, [&] { return value_.load(std::memory_order_seq_cst) != old; });
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  std::atomic<uint32_t> value_{0};
  std::atomic<int> sleepers_{0};
  std::mutex mu_;
  std::condition_variable cv_;
};

class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait() {
    if (n_ == 1) return;
    const uint32_t gen = gen_.load();
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      arrived_.store(0, std::memory_order_relaxed);
      gen_.bump();
    } else {
      gen_.wait_change(gen);
    }
  }

 private:
  const int n_;
  std::atomic<int> arrived_{0};
  Signal gen_;
};

// Thread t's share [lo, hi) of n items split k ways.
std::pair<int, int> part(int n, int k, int t, bool align) {
  auto cut = [&](int i) -> int {
    if (i >= k) return n;
    int64_t c = static_cast<int64_t>(n) * i / k;
    if (align && n >= kAlign * k) c = (c + kAlign / 2) / kAlign * kAlign;
    return static_cast<int>(c);
  };
  return {cut(t), cut(t + 1)};
}

struct Layer {
  int fan_in, units;
  Act act;
  int64_t kernel, bias;  // offsets in the flat weights
};

struct Job {
  float* w;
  const float* x;      // the batch (m x input), or with rows the data it comes from
  const int32_t* rows;  // null, or which rows of x make the batch (m of them): the threads gather them
  const int32_t* labels;
  const float* targets;
  int m;
  Opt opt;
  double lr, mu, b1, b2, eps, bc1, bc2;
  float* s0;  // momentum: velocity; Adam: first moment
  float* s1;  // Adam: second moment
  uint32_t seq;  // which step this is (from 1), so per-step flags need no reset
};

void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
          float beta, float* c, int ldc) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda,
              b, ldb, beta, c, ldc);
}

class Team {
 public:
  Team(int threads, int input, std::vector<Layer> layers, Loss loss)
      : k_(threads), input_(input), layers_(std::move(layers)), loss_(loss), barrier_(threads) {
    for (const Layer& l : layers_) num_params_ = std::max(num_params_, l.bias + l.units);
    grad_.assign(static_cast<size_t>(num_params_), 0.0f);
    for (int t = 1; t < k_; t++) threads_.emplace_back([this, t] { work(t); });
  }
  ~Team() { stop(); }

  int64_t num_params() const { return num_params_; }
  int input() const { return input_; }
  int outputs() const { return layers_.back().units; }
  Loss loss() const { return loss_; }
  bool stopped() const { return stopped_; }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    stop_.store(true, std::memory_order_seq_cst);
    job_signal_.bump();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  // One step on the caller's thread and the team's; returns the summed loss and correct count.
  // Starts (clearing the counts) or stops counting each thread's CPU time in steps and in barriers.
  void profile(bool on) {
    settle();
    profiling_ = on;
    for (int i = 0; i < k_; i++) cpu_[i].run = cpu_[i].wait = 0;
  }
  // Per thread: CPU ns inside steps, and the part of it spent waiting at barriers.
  std::vector<std::pair<int64_t, int64_t>> profile_counts() {
    settle();
    std::vector<std::pair<int64_t, int64_t>> out;
    for (int i = 0; i < k_; i++) out.emplace_back(cpu_[i].run, cpu_[i].wait);
    return out;
  }

  void step(const Job& job, double* loss, int64_t* correct) {
    reserve(job.m);
    job_ = job;
    job_.seq = ++seq_;
    job_signal_.bump();
    run(0);  // ends at a barrier every thread has passed: the step is complete
    double sum = 0;
    int64_t right = 0;
    for (int i = 0; i < job.m; i++) {
      sum += row_loss_[i];
      right += row_correct_[i];
    }
    *loss = sum;
    *correct = right;
  }

 private:
  void reserve(int m) {
    if (m <= capacity_) return;
    acts_.resize(layers_.size());
    deltas_.resize(layers_.size());
    for (size_t i = 0; i < layers_.size(); i++) {
      acts_[i].assign(static_cast<size_t>(m) * layers_[i].units, 0.0f);
      deltas_[i].assign(static_cast<size_t>(m) * layers_[i].units, 0.0f);
    }
    row_loss_.assign(m, 0.0);
    row_correct_.assign(m, 0);
    batch_x_.assign(static_cast<size_t>(m) * input_, 0.0f);
    if (layers_.size() > 1 && k_ > 1) {
      size_t widest = 0;
      for (const Layer& l : layers_) widest = std::max(widest, static_cast<size_t>(l.units));
      for (auto& set : partials_) {
        set.resize(static_cast<size_t>(k_));
        for (auto& p : set) p.assign(static_cast<size_t>(m) * widest, 0.0f);
      }
    }
    if (layers_.size() > 1) {
      own_delta_.resize(static_cast<size_t>(k_));
      for (auto& d : own_delta_) d.assign(static_cast<size_t>(m) * layers_.back().fan_in, 0.0f);
    }
    capacity_ = m;
  }

  void work(int t) {
    // From 0, not from a load here: the first step may be posted before this thread gets to run.
    uint32_t seen = 0;
    for (;;) {
      job_signal_.wait_change(seen);
      seen = job_signal_.load();
      if (stop_.load(std::memory_order_acquire)) return;
      run(t);
      cpu_[t].finished.store(seen, std::memory_order_release);
    }
  }

  // Waits until every thread has finished its bookkeeping after the last step's final barrier (a few instructions:
  // only the profile counts are written there).
  void settle() {
    const uint32_t posted = job_signal_.load();
    for (int t = 1; t < k_; t++) {
      while (cpu_[t].finished.load(std::memory_order_acquire) != posted) cpu_relax();
    }
  }

  void run(int t) {
    const int64_t start = profiling_ ? thread_cpu_ns() : 0;
    steps(t);
    if (profiling_) cpu_[t].run += thread_cpu_ns() - start;
  }

  // A barrier; when profiling, the CPU time this thread spends in it (spinning) is counted as waiting.
  void meet(int t) {
    if (!profiling_) return barrier_.wait();
    const int64_t start = thread_cpu_ns();
    barrier_.wait();
    cpu_[t].wait += thread_cpu_ns() - start;
  }

  // The input of layer 0 this step: the caller's batch, or the team's copy of the rows it names, which each thread
  // gathers the part of that it reads: its input columns when there is a hidden layer (the only part its forward
  // and backward touch, so the batch never moves between cores), its batch rows when the top layer is the first.
  const float* layer0Input() const { return job_.rows == nullptr ? job_.x : batch_x_.data(); }
  const float* batchInput(int t) {
    const Job& j = job_;
    if (j.rows == nullptr) return j.x;
    const int64_t n = input_;
    float* x = batch_x_.data();
    if (layers_.size() > 1) {
      auto [c0, c1] = part(input_, k_, t, true);
      for (int64_t r = 0; r < j.m; r++) {
        std::copy(j.x + j.rows[r] * n + c0, j.x + j.rows[r] * n + c1, x + r * n + c0);
      }
    } else {
      auto [r0, r1] = part(j.m, k_, t, false);
      for (int64_t r = r0; r < r1; r++) std::copy(j.x + j.rows[r] * n, j.x + (j.rows[r] + 1) * n, x + r * n);
      meet(t);  // every thread's top-layer rows and weight rows read every batch row
    }
    return x;
  }

  void steps(int t) {
    const Job& j = job_;
    const int m = j.m;
    const int top = static_cast<int>(layers_.size()) - 1;
    const float* input = batchInput(t);
    for (int i = 0; i < top; i++) {
      const Layer& l = layers_[i];
      float* out = acts_[i].data();
      auto [c0, c1] = part(l.units, k_, t, true);
      if (k_ == 1) {
        gemm(false, false, m, l.units, l.fan_in, 1.0f, input, l.fan_in, j.w + l.kernel, l.units, 0.0f, out, l.units);
      } else {
        // Split by the layer's input rows, the rows of W this thread steps in backward: W stays in this core's cache
        // (split by output columns instead, every thread read rows another core had just written, and two threads
        // were no faster than one). Each thread multiplies its columns of the input by its rows of W into its own
        // partial product, then sums every thread's partial for its own columns (fixed order: the same bits every
        // run). Those columns are the next hidden layer's input rows for this thread: no barrier between them.
        sumPartials(partialProduct(t, i, input), l, 0, m, c0, c1, out);
      }
      activate(out, j.w + l.bias, m, l.units, c0, c1, l.act);
      input = out;
    }
    {
      const Layer& l = layers_[top];
      auto [r0, r1] = part(m, k_, t, false);
      float* out = acts_[top].data();
      if (top == 0 || k_ == 1) {
        gemm(false, false, r1 - r0, l.units, l.fan_in, 1.0f, input + static_cast<int64_t>(r0) * l.fan_in, l.fan_in,
             j.w + l.kernel, l.units, 0.0f, out + static_cast<int64_t>(r0) * l.units, l.units);
      } else {
        // Split by input rows as the hidden layers are: this thread's columns of the layer below (its own) times its
        // rows of W, then each thread sums the partial logits of its batch rows. Far less crosses between cores
        // than the layer below's every column would.
        sumPartials(partialProduct(t, top, input), l, r0, r1, 0, l.units, out);
      }
      for (int r = r0; r < r1; r++) {
        activate(out + static_cast<int64_t>(r) * l.units, j.w + l.bias, 1, l.units, 0, l.units, l.act);
        lossRow(r, m, l.units);
      }
      meet(t);
    }
    if (top == 0) {
      stepWeights(t, 0, deltas_[0].data());
      meet(t);
      return;
    }
    // The top layer is narrow (a model's outputs), so every thread computes the whole delta of the layer below into
    // its own buffer rather than its columns of a shared one: no barrier between the top layer and the one below.
    // Its weights are then stepped last, once every thread has said it read them (long done by then: a flag, not a
    // wait in practice).
    float* below = own_delta_[t].data();
    deltaBelow(top, deltas_[top].data(), below, 0, layers_[top].fan_in);
    cpu_[t].read_top.store(j.seq, std::memory_order_release);
    for (int i = top - 1; i >= 0; i--) {
      const float* d = i == top - 1 ? below : deltas_[i].data();
      if (i > 0) {
        auto [r0, r1] = part(layers_[i].fan_in, k_, t, true);
        deltaBelow(i, d, deltas_[i - 1].data(), r0, r1);
      }
      stepWeights(t, i, d);
      if (i > 0) meet(t);  // the layer below needs every column of its delta
    }
    awaitTopRead(t, j.seq);
    stepWeights(t, top, deltas_[top].data());
    meet(t);
  }

  // Waits until every thread has computed its delta from the top layer's weights, before they change.
  void awaitTopRead(int t, uint32_t seq) {
    const int64_t start = profiling_ ? thread_cpu_ns() : 0;
    for (int u = 0; u < k_; u++) {
      for (uint32_t i = 1; cpu_[u].read_top.load(std::memory_order_acquire) != seq; i++) {
        cpu_relax();
        if ((i & 255) == 0) std::this_thread::yield();  // the partner is likely preempted: offer it this core
      }
    }
    if (profiling_) cpu_[t].wait += thread_cpu_ns() - start;
  }

  // This thread's partial product of layer i, its columns of the input times its rows of W, then a barrier: returns
  // every thread's partials (one set per layer parity, so writing the next layer's never overwrites one a slower
  // thread is still summing).
  const std::vector<float>* partialProduct(int t, int i, const float* input) {
    const Layer& l = layers_[i];
    auto [r0, r1] = part(l.fan_in, k_, t, true);
    std::vector<float>* partial = partials_[i % 2].data();
    if (r1 > r0) {
      gemm(false, false, job_.m, l.units, r1 - r0, 1.0f, input + r0, l.fan_in,
           job_.w + l.kernel + static_cast<int64_t>(r0) * l.units, l.units, 0.0f, partial[t].data(), l.units);
    }
    meet(t);
    return partial;
  }

  // Rows [r0, r1) and columns [c0, c1) of a layer's pre-activation: the sum of the threads' partial products, in
  // thread order (a thread with no input rows has none).
  void sumPartials(const std::vector<float>* partial, const Layer& l, int r0, int r1, int c0, int c1,
                   float* out) const {
    bool first = true;
    for (int u = 0; u < k_; u++) {
      auto [w0, w1] = part(l.fan_in, k_, u, true);
      if (w1 <= w0) continue;
      const float* p = partial[u].data();
      for (int64_t r = r0; r < r1; r++) {
        float* o = out + r * l.units;
        const float* q = p + r * l.units;
        if (first) {
          for (int c = c0; c < c1; c++) o[c] = q[c];
        } else {
          for (int c = c0; c < c1; c++) o[c] += q[c];
        }
      }
      first = false;
    }
  }

  void activate(float* out, const float* bias, int m, int n, int c0, int c1, Act act) {
    for (int64_t r = 0; r < m; r++) {
      float* row = out + r * n;
      if (act == Act::kRelu) {
        for (int c = c0; c < c1; c++) {
          const float v = row[c] + bias[c];
          row[c] = v < 0.0f ? 0.0f : v;  // keeps NaN, like biasAct
        }
        continue;
      }
      for (int c = c0; c < c1; c++) row[c] += bias[c];
      if (act == Act::kSigmoid) {
        for (int c = c0; c < c1; c++) row[c] = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(row[c]))));
      } else if (act == Act::kTanh) {
        for (int c = c0; c < c1; c++) row[c] = static_cast<float>(std::tanh(static_cast<double>(row[c])));
      }
    }
  }

  // Row r's loss and delta, as the softmaxXent kernel (scale 1/m) or DenseNet's MSE compute them.
  void lossRow(int r, int m, int n) {
    const float* x = acts_.back().data() + static_cast<int64_t>(r) * n;
    float* d = deltas_.back().data() + static_cast<int64_t>(r) * n;
    if (loss_ == Loss::kMse) {
      const float* y = job_.targets + static_cast<int64_t>(r) * n;
      const double scale = 2.0 / (static_cast<double>(m) * n);
      double loss = 0;
      for (int c = 0; c < n; c++) {
        const double e = static_cast<double>(x[c]) - static_cast<double>(y[c]);
        loss += e * e / n;
        d[c] = static_cast<float>(e * scale);
      }
      row_loss_[r] = loss;
      row_correct_[r] = 0;
      return;
    }
    row_loss_[r] = 0;
    row_correct_[r] = softmax_xent_row(x, d, n, job_.labels[r], 1.0 / m, &row_loss_[r]) ? 1 : 0;
  }

  // Columns [r0, r1) of the delta of the layer below layer i, dX[:, r0:r1] = dY W[r0:r1, :]^T times the derivative
  // of the activation below, into prev (m x fan_in). Reads those rows of W: call it before they are stepped.
  void deltaBelow(int i, const float* d, float* prev, int r0, int r1) {
    const Layer& l = layers_[i];
    if (r1 <= r0) return;
    const int m = job_.m;
    gemm(false, true, m, r1 - r0, l.units, 1.0f, d, l.units, job_.w + l.kernel + static_cast<int64_t>(r0) * l.units,
         l.units, 0.0f, prev + r0, l.fan_in);
    derive(prev, acts_[i - 1].data(), m, l.fan_in, r0, r1, layers_[i - 1].act);
  }

  // This thread's rows of layer i's weight gradient and their update, and its columns of the bias, from the delta d.
  void stepWeights(int t, int i, const float* d) {
    const Job& j = job_;
    const Layer& l = layers_[i];
    const int m = j.m;
    const float* input = i == 0 ? layer0Input() : acts_[i - 1].data();
    auto [r0, r1] = part(l.fan_in, k_, t, true);
    const int64_t w0 = l.kernel + static_cast<int64_t>(r0) * l.units;
    const int64_t w1 = l.kernel + static_cast<int64_t>(r1) * l.units;
    if (j.opt == Opt::kSgd) {
      // Plain SGD folded into the gemm (W = -lr X^T dY + W), as DenseNet.sgdStep does.
      gemm(true, false, r1 - r0, l.units, m, static_cast<float>(-j.lr), input + r0, l.fan_in, d, l.units, 1.0f,
           j.w + w0, l.units);
    } else {
      gemm(true, false, r1 - r0, l.units, m, 1.0f, input + r0, l.fan_in, d, l.units, 0.0f, grad_.data() + w0,
           l.units);
      update(w0, w1);
    }
    auto [c0, c1] = part(l.units, k_, t, true);
    float* bg = grad_.data() + l.bias;
    for (int c = c0; c < c1; c++) bg[c] = 0.0f;
    for (int64_t r = 0; r < m; r++) {
      const float* row = d + r * l.units;
      for (int c = c0; c < c1; c++) bg[c] += row[c];
    }
    update(l.bias + c0, l.bias + c1);
  }

  // The activation derivative of the layer below, on columns [r0, r1) of its delta (as DenseNet computes it).
  static void derive(float* prev, const float* act, int m, int n, int r0, int r1, Act a) {
    if (a == Act::kLinear) return;
    for (int64_t r = 0; r < m; r++) {
      float* p = prev + r * n;
      const float* x = act + r * n;
      if (a == Act::kRelu) {
        for (int c = r0; c < r1; c++) p[c] = x[c] <= 0.0f ? 0.0f : p[c];
      } else if (a == Act::kSigmoid) {
        for (int c = r0; c < r1; c++) {
          const double v = x[c];
          p[c] = static_cast<float>(p[c] * (v * (1 - v)));
        }
      } else if (a == Act::kTanh) {
        for (int c = r0; c < r1; c++) {
          const double v = x[c];
          p[c] = static_cast<float>(p[c] * (1 - v * v));
        }
      }
    }
  }

  // The optimizer step on weights [a, b) from grad_, with the formulas of the sgd and adam kernels (kernels.cc).
  void update(int64_t a, int64_t b) {
    const Job& j = job_;
    float* w = j.w;
    const float* g = grad_.data();
    if (j.opt == Opt::kSgd) {
      for (int64_t i = a; i < b; i++) w[i] = static_cast<float>(w[i] - j.lr * g[i]);
    } else if (j.opt == Opt::kMomentum) {
      float* v = j.s0;
      for (int64_t i = a; i < b; i++) {
        const float vi = static_cast<float>(j.mu * v[i] + g[i]);
        v[i] = vi;
        w[i] = static_cast<float>(w[i] - j.lr * vi);
      }
    } else {
      float* mo = j.s0;
      float* ve = j.s1;
      const double ob1 = 1 - j.b1, ob2 = 1 - j.b2;
      for (int64_t i = a; i < b; i++) {
        const double gi = g[i];
        const float mi = static_cast<float>(j.b1 * mo[i] + ob1 * gi);
        const float vi = static_cast<float>(j.b2 * ve[i] + ob2 * gi * gi);
        mo[i] = mi;
        ve[i] = vi;
        w[i] = static_cast<float>(w[i] - j.lr * (mi / j.bc1) / (std::sqrt(vi / j.bc2) + j.eps));
      }
    }
  }

  const int k_;
  const int input_;
  const std::vector<Layer> layers_;
  const Loss loss_;
  int64_t num_params_ = 0;
  int capacity_ = 0;
  uint32_t seq_ = 0;
  std::vector<std::vector<float>> acts_, deltas_;
  std::vector<std::vector<float>> own_delta_;  // per thread: the whole delta below the top layer
  std::vector<float> batch_x_;                 // the batch the threads gather when a step names rows
  // Per thread, its partial product of a hidden layer; two sets, by layer parity, so a thread writing the next
  // layer's never overwrites one a slower thread is still summing.
  std::array<std::vector<std::vector<float>>, 2> partials_;
  std::vector<float> grad_;
  std::vector<double> row_loss_;
  std::vector<uint8_t> row_correct_;
  Job job_{};
  struct alignas(64) ThreadCpu {
    int64_t run = 0, wait = 0;
    std::atomic<uint32_t> finished{0};  // the last step this thread has completely finished
    std::atomic<uint32_t> read_top{0};  // the last step in which this thread has read the top layer's weights
  };
  std::unique_ptr<ThreadCpu[]> cpu_ = std::make_unique<ThreadCpu[]>(static_cast<size_t>(k_));
  bool profiling_ = false;
  Signal job_signal_;
  Barrier barrier_;
  std::atomic<bool> stop_{false};
  bool stopped_ = false;
  std::vector<std::thread> threads_;
};

// The JS handle: the team plus whether its environment cleanup hook (which stops the threads when the
// environment ends, e.g. a worker thread exiting) is still registered.
struct Handle {
  napi_env env;
  std::unique_ptr<Team> team;
  bool hooked = false;
};

constexpr napi_type_tag kTeamTag = {0x6564676566656474ULL, 0x64656e7365746561ULL};  // "edgefedt", "denseteam"

void cleanup_hook(void* arg) {
  auto* h = static_cast<Handle*>(arg);
  h->hooked = false;
  h->team->stop();
}

void finalize(napi_env env, void* data, void*) {
  auto* h = static_cast<Handle*>(data);
  if (h->hooked) napi_remove_env_cleanup_hook(env, cleanup_hook, h);
  delete h;  // ~Team stops and joins the threads
}

bool get_string(napi_env env, napi_value v, const char* fn, const char* name, std::string* out) {
  char buf[64];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, sizeof buf, &len) != napi_ok) {
    return throw_msg(env, true, "%s: %s must be a string, got %s", fn, name, describe(env, v));
  }
  out->assign(buf, len);
  return true;
}

bool get_int(napi_env env, napi_value v, const char* fn, const char* name, int64_t lo, int64_t hi, int64_t* out) {
  if (!get_dim(env, v, fn, name, out)) return false;
  if (*out < lo || *out > hi) {
    return throw_msg(env, false, "%s: %s must be in [%lld, %lld], got %lld", fn, name, static_cast<long long>(lo),
                     static_cast<long long>(hi), static_cast<long long>(*out));
  }
  return true;
}

// denseTeam(threads, inputSize, units: Int32Array, activations: string (one letter a layer: l r s t x), loss)
napi_value Create(napi_env env, napi_callback_info info) {
  const char* fn = "denseTeam";
  napi_value a_[5];
  if (!args(env, info, a_)) return nullptr;
  int64_t threads, input;
  I32 units;
  std::string acts, loss;
  if (!get_int(env, a_[0], fn, "threads", 1, 256, &threads) ||
      !get_int(env, a_[1], fn, "inputSize", 1, 1 << 24, &input) ||
      !get_i32(env, a_[2], fn, "units", &units) || !get_string(env, a_[3], fn, "activations", &acts) ||
      !get_string(env, a_[4], fn, "loss", &loss)) {
    return nullptr;
  }
  if (units.len == 0 || units.len > 60 || static_cast<int64_t>(acts.size()) != units.len) {
    throw_msg(env, false, "%s: units (%lld layers) and activations ('%s') must name the same 1 to 60 layers", fn,
              static_cast<long long>(units.len), acts.c_str());
    return nullptr;
  }
  if (loss != "xent" && loss != "mse") {
    throw_msg(env, false, "%s: loss must be 'xent' or 'mse', got '%s'", fn, loss.c_str());
    return nullptr;
  }
  std::vector<Layer> layers;
  int64_t offset = 0;
  int64_t fan_in = input;
  for (int64_t i = 0; i < units.len; i++) {
    const int32_t u = units.data[i];
    const char a = acts[i];
    const bool last = i == units.len - 1;
    if (u < 1 || u > (1 << 24)) {
      throw_msg(env, false, "%s: units[%lld] = %d must be in [1, 16777216]", fn, static_cast<long long>(i), u);
      return nullptr;
    }
    const Act act = a == 'r' ? Act::kRelu : a == 's' ? Act::kSigmoid : a == 't' ? Act::kTanh : a == 'x' ? Act::kSoftmax
                                                                                                     : Act::kLinear;
    if (std::string("lrstx").find(a) == std::string::npos || (act == Act::kSoftmax) != (last && loss == "xent") ||
        (last && loss == "mse" && act != Act::kLinear)) {
      throw_msg(env, false,
                "%s: activation '%c' of layer %lld does not fit "
                "(hidden: l, r, s or t; output: x with xent, l with mse)",
                fn, a, static_cast<long long>(i));
      return nullptr;
    }
    if (fan_in * u > INT_MAX) {
      throw_msg(env, false, "%s: layer %lld has %lld weights, more than a gemm takes", fn, static_cast<long long>(i),
                static_cast<long long>(fan_in * u));
      return nullptr;
    }
    layers.push_back({static_cast<int>(fan_in), u, act, offset, offset + fan_in * u});
    offset += fan_in * u + u;
    fan_in = u;
  }
  auto* h = new Handle{env, std::make_unique<Team>(static_cast<int>(threads), static_cast<int>(input),
                                                   std::move(layers), loss == "mse" ? Loss::kMse : Loss::kXent)};
  napi_value out;
  if (napi_create_external(env, h, finalize, nullptr, &out) != napi_ok) {
    delete h;
    return nullptr;
  }
  h->hooked = napi_add_env_cleanup_hook(env, cleanup_hook, h) == napi_ok;
  if (napi_type_tag_object(env, out, &kTeamTag) != napi_ok) return nullptr;
  return out;
}

// The handle behind v, when v is one denseTeam() made (type-tagged: no other external passes for one).
Handle* handle_of(napi_env env, napi_value v) {
  napi_valuetype t;
  bool tagged = false;
  void* data = nullptr;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
      napi_check_object_type_tag(env, v, &kTeamTag, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, v, &data) != napi_ok) {
    return nullptr;
  }
  return static_cast<Handle*>(data);
}

// A team handle argument; `open` refuses a closed team (denseTeamClose takes one: closing twice is allowed).
bool get_team(napi_env env, napi_value v, const char* fn, Handle** out, bool open = true) {
  *out = handle_of(env, v);
  if (*out == nullptr) {
    return throw_msg(env, true, "%s: team must be a handle from denseTeam(), got %s", fn, describe(env, v));
  }
  if (open && (*out)->team->stopped()) return throw_msg(env, false, "%s: the team was closed", fn);
  return true;
}

// denseTeamStep(team, w, x, y, m, optimizer ('sgd' | 'momentum' | 'adam'), lr, a, b, eps, step, s0, s1, rows):
// a = momentum or beta1, b = beta2; s0, s1 the optimizer's state (null when it has none); rows null (x is the batch)
// or an Int32Array of m row indices into x (a whole data set, rows x inputSize: the threads gather the batch).
// Returns {loss, correct}.
napi_value Step(napi_env env, napi_callback_info info) {
  const char* fn = "denseTeamStep";
  napi_value a_[14];
  if (!args(env, info, a_)) return nullptr;
  Handle* h = nullptr;
  F32 w, x, s0{nullptr, 0}, s1{nullptr, 0}, targets{nullptr, 0};
  I32 labels{nullptr, 0}, rows{nullptr, 0};
  int64_t m;
  std::string opt;
  double lr, a, b, eps, step;
  if (!get_team(env, a_[0], fn, &h) || !get_f32(env, a_[1], fn, "w", &w) || !get_f32(env, a_[2], fn, "x", &x) ||
      !get_int(env, a_[4], fn, "m", 1, INT_MAX, &m) || !get_string(env, a_[5], fn, "optimizer", &opt) ||
      !get_num(env, a_[6], fn, "lr", &lr) || !get_num(env, a_[7], fn, "a", &a) || !get_num(env, a_[8], fn, "b", &b) ||
      !get_num(env, a_[9], fn, "eps", &eps) || !get_num(env, a_[10], fn, "step", &step)) {
    return nullptr;
  }
  Team& team = *h->team;
  const int n = team.outputs();
  if (team.loss() == Loss::kXent ? !get_i32(env, a_[3], fn, "y", &labels) : !get_f32(env, a_[3], fn, "y", &targets)) {
    return nullptr;
  }
  if (w.len != team.num_params()) {
    throw_msg(env, false, "%s: w has %lld values, the model has %lld", fn, static_cast<long long>(w.len),
              static_cast<long long>(team.num_params()));
    return nullptr;
  }
  napi_valuetype rows_type;
  if (napi_typeof(env, a_[13], &rows_type) != napi_ok) return nullptr;
  if (rows_type != napi_null && rows_type != napi_undefined) {
    if (!get_i32(env, a_[13], fn, "rows", &rows) || !need(env, fn, "rows", rows.len, m, "m")) return nullptr;
    if (x.len % team.input() != 0) {
      throw_msg(env, false, "%s: x has %lld values, not whole rows of %d", fn, static_cast<long long>(x.len),
                team.input());
      return nullptr;
    }
    const int64_t have = x.len / team.input();
    for (int64_t i = 0; i < m; i++) {
      if (rows.data[i] < 0 || rows.data[i] >= have) {
        throw_msg(env, false, "%s: rows[%lld] = %d is out of range [0, %lld)", fn, static_cast<long long>(i),
                  static_cast<int>(rows.data[i]), static_cast<long long>(have));
        return nullptr;
      }
    }
  }
  if (!need(env, fn, "x", x.len, rows.data ? team.input() : m * team.input(), rows.data ? "inputSize" : "m*inputSize") ||
      (labels.data && !need(env, fn, "y", labels.len, m, "m")) ||
      (targets.data && !need(env, fn, "y", targets.len, m * n, "m*outputs"))) {
    return nullptr;
  }
  if (!(lr > 0) || !std::isfinite(lr)) {
    throw_msg(env, false, "%s: lr must be a positive number, got %.17g", fn, lr);
    return nullptr;
  }
  Opt o;
  if (opt == "sgd") o = Opt::kSgd;
  else if (opt == "momentum") o = Opt::kMomentum;
  else if (opt == "adam") o = Opt::kAdam;
  else {
    throw_msg(env, false, "%s: optimizer must be 'sgd', 'momentum' or 'adam', got '%s'", fn, opt.c_str());
    return nullptr;
  }
  const int slots = o == Opt::kAdam ? 2 : o == Opt::kMomentum ? 1 : 0;
  if ((slots >= 1 && !get_f32(env, a_[11], fn, "s0", &s0)) || (slots >= 2 && !get_f32(env, a_[12], fn, "s1", &s1)) ||
      (slots >= 1 && !need(env, fn, "s0", s0.len, w.len, "w.length")) ||
      (slots >= 2 && !need(env, fn, "s1", s1.len, w.len, "w.length"))) {
    return nullptr;
  }
  if (o == Opt::kMomentum && !(a >= 0)) {
    throw_msg(env, false, "%s: momentum must be >= 0, got %.17g", fn, a);
    return nullptr;
  }
  if (o == Opt::kAdam && !(step >= 1 && step == std::floor(step) && step <= 9007199254740991.0)) {
    throw_msg(env, false, "%s: step must be a positive integer, got %.17g", fn, step);
    return nullptr;
  }
  const int64_t xn = rows.data ? x.len : m * team.input();
  const float* others[] = {x.data, targets.data, s0.data, s1.data};
  const int64_t lens[] = {xn, targets.data ? m * n : 0, s0.len, s1.len};
  for (int i = 0; i < 4; i++) {
    if (overlaps(w.data, w.len, others[i], lens[i])) {
      throw_msg(env, false, "%s: w must not overlap x, y or the optimizer state", fn);
      return nullptr;
    }
  }
  if (slots == 2 && overlaps(s0.data, s0.len, s1.data, s1.len)) {
    throw_msg(env, false, "%s: s0 and s1 must not overlap", fn);
    return nullptr;
  }
  for (int64_t i = 0; labels.data && i < m; i++) {
    if (labels.data[i] < 0 || labels.data[i] >= n) {
      throw_msg(env, false, "%s: labels[%lld] = %d is out of range [0, %d)", fn, static_cast<long long>(i),
                static_cast<int>(labels.data[i]), n);
      return nullptr;
    }
  }
  Job job{w.data, x.data, rows.data, labels.data, targets.data, static_cast<int>(m), o, lr, a, a, b, eps,
          1 - std::pow(a, step), 1 - std::pow(b, step), s0.data, s1.data};
  double loss;
  int64_t correct;
  team.step(job, &loss, &correct);
  return batch_result(env, loss, static_cast<double>(correct));
}

// denseTeamClose(team): stops and joins the team's threads now (later steps throw). Closing twice is fine.
napi_value Close(napi_env env, napi_callback_info info) {
  napi_value a_[1];
  if (!args(env, info, a_)) return nullptr;
  Handle* h = nullptr;
  if (!get_team(env, a_[0], "denseTeamClose", &h, false)) return nullptr;
  if (h->hooked) napi_remove_env_cleanup_hook(env, cleanup_hook, h);
  h->hooked = false;
  h->team->stop();
  return nullptr;
}

// denseTeamProfile(team, on): starts (clearing) or stops counting CPU time per thread. Returns the counts so far as
// a Float64Array [ns in steps, ns of it waiting at barriers] per thread, the caller's thread first. For benchmarks:
// on a shared machine they show what each thread computed, which wall time cannot.
napi_value Profile(napi_env env, napi_callback_info info) {
  const char* fn = "denseTeamProfile";
  napi_value a_[2];
  if (!args(env, info, a_)) return nullptr;
  Handle* h = nullptr;
  bool on;
  if (!get_team(env, a_[0], fn, &h) || !get_bool(env, a_[1], fn, "on", &on)) return nullptr;
  const auto counts = h->team->profile_counts();
  h->team->profile(on);
  napi_value buffer, out;
  void* data = nullptr;
  if (napi_create_arraybuffer(env, counts.size() * 16, &data, &buffer) != napi_ok ||
      napi_create_typedarray(env, napi_float64_array, counts.size() * 2, buffer, 0, &out) != napi_ok) {
    return nullptr;
  }
  auto* d = static_cast<double*>(data);
  for (size_t i = 0; i < counts.size(); i++) {
    d[2 * i] = static_cast<double>(counts[i].first);
    d[2 * i + 1] = static_cast<double>(counts[i].second);
  }
  return out;
}

}  // namespace

bool define_dense_team(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"denseTeam", nullptr, Create, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"denseTeamStep", nullptr, Step, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"denseTeamClose", nullptr, Close, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"denseTeamProfile", nullptr, Profile, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props) == napi_ok;
}

}  // namespace edgefed
