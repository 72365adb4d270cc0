// One example's softmax cross-entropy, shared by the softmaxXent kernel and the dense team (dense-team.cc).
#pragma once
#include <cmath>
#include <cstdint>

namespace edgefed {

// Adds row x's loss (logsumexp(x) - x[label], in double) to *loss, writes scale * (softmax(x) - onehot(label)) to d
// (x may alias d) and returns whether the first maximum of x is the label.
inline bool softmax_xent_row(const float* x, float* d, int64_t n, int64_t label, double scale, double* loss) {
  float max = x[0];
  int64_t arg = 0;
  for (int64_t j = 1; j < n; j++) {
    if (x[j] > max) {  // strict: the first maximum wins ties
      max = x[j];
      arg = j;
    }
  }
  const double x_label = x[label];
  double sum = 0;
  for (int64_t j = 0; j < n; j++) {
    const double e = std::exp(static_cast<double>(x[j]) - static_cast<double>(max));
    d[j] = static_cast<float>(e);
    sum += e;
  }
  // Stable because every exponent is <= 0.
  *loss += std::log(sum) + (static_cast<double>(max) - x_label);
  const double inv = scale / sum;
  for (int64_t j = 0; j < n; j++) d[j] = static_cast<float>(d[j] * inv);
  d[label] = static_cast<float>(d[label] - scale);
  return arg == label;
}

}  // namespace edgefed
