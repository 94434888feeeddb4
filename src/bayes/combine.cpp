// Bayes: Robinson's f(w) and Fisher's chi-square combining. Sums of logs
// instead of products, so that 150 strong clues do not underflow.
#include "combine.hpp"

#include <algorithm>
#include <cmath>

namespace mxguard::bayes {

double token_probability(uint64_t spam_count, uint64_t ham_count, uint64_t spam_messages,
                         uint64_t ham_messages, const ModelParams& params) {
  uint64_t n = spam_count + ham_count;
  if (n == 0 || spam_messages == 0 || ham_messages == 0) return params.prior;
  // Ratios to the class sizes, not raw counts, so an unbalanced training set
  // (mostly ham, as on a real MX) does not make every token look hammy.
  double b = std::min(1.0, static_cast<double>(spam_count) / static_cast<double>(spam_messages));
  double g = std::min(1.0, static_cast<double>(ham_count) / static_cast<double>(ham_messages));
  double p = b / (b + g);
  double s = params.strength;
  double dn = static_cast<double>(n);
  return (s * params.prior + dn * p) / (s + dn);
}

double chi2_q(double x2, unsigned dof) {
  // For even dof the tail is a finite Poisson sum: e^-m * sum_{i<dof/2} m^i / i!.
  double m = x2 / 2.0;
  unsigned k = dof / 2;
  if (m <= 0.0 || k == 0) return 1.0;
  if (m < 700.0) {
    double term = std::exp(-m);
    double sum = term;
    for (unsigned i = 1; i < k; ++i) {
      term *= m / i;
      sum += term;
    }
    return std::min(sum, 1.0);
  }
  // e^-m underflows: the same sum in log space.
  double log_m = std::log(m);
  double log_term = -m;
  double log_sum = log_term;
  for (unsigned i = 1; i < k; ++i) {
    log_term += log_m - std::log(static_cast<double>(i));
    double hi = std::max(log_sum, log_term), lo = std::min(log_sum, log_term);
    log_sum = hi + std::log1p(std::exp(lo - hi));
  }
  return std::min(std::exp(log_sum), 1.0);
}

double fisher_combine(const std::vector<double>& probabilities) {
  if (probabilities.empty()) return 0.5;
  double ln_spam = 0.0, ln_ham = 0.0;
  for (double f : probabilities) {
    // Clamped so a token at exactly 0 or 1 cannot make a log infinite.
    f = std::clamp(f, 1e-12, 1.0 - 1e-12);
    ln_ham += std::log(f);         // small when the tokens are hammy
    ln_spam += std::log(1.0 - f);  // small when the tokens are spammy
  }
  unsigned dof = 2 * static_cast<unsigned>(probabilities.size());
  // S near 1: the evidence is too spammy to be chance; H likewise for ham.
  double s = 1.0 - chi2_q(-2.0 * ln_spam, dof);
  double h = 1.0 - chi2_q(-2.0 * ln_ham, dof);
  return (s - h + 1.0) / 2.0;
}

Classification combine(std::vector<double>& probs, const ModelParams& params) {
  Classification c;
  c.trained = true;
  auto weak = [&](double f) { return std::fabs(f - 0.5) < params.min_deviation; };
  probs.erase(std::remove_if(probs.begin(), probs.end(), weak), probs.end());
  if (params.max_significant > 0 && probs.size() > params.max_significant) {
    std::nth_element(probs.begin(), probs.begin() + params.max_significant, probs.end(),
                     [](double a, double b) { return std::fabs(a - 0.5) > std::fabs(b - 0.5); });
    probs.resize(params.max_significant);
  }
  c.tokens_used = static_cast<unsigned>(probs.size());
  c.spam_probability = fisher_combine(probs);
  return c;
}

}  // namespace mxguard::bayes
