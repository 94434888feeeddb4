// Bayes: Gary Robinson's per-token probabilities combined with Fisher's
// inverse chi-square method (as in SpamBayes and bogofilter). Pure math.
#pragma once

#include <cstdint>
#include <vector>

#include "mxguard/bayes/bayes.hpp"

namespace mxguard::bayes {

// Robinson's f(w): the token's spam probability from its counts, pulled
// towards params.prior by params.strength when the token is rare.
double token_probability(uint64_t spam_count, uint64_t ham_count, uint64_t spam_messages,
                         uint64_t ham_messages, const ModelParams& params);

// P(chi-square with `dof` (even) degrees of freedom >= x2).
double chi2_q(double x2, unsigned dof);

// Combines the per-token f(w) of the significant tokens (already selected) to
// a 0..1 spam probability: 1 = spam, 0 = ham, near 0.5 = unsure.
double fisher_combine(const std::vector<double>& probabilities);

// Selects the significant tokens from all f(w) (|f - 0.5| >= min_deviation,
// the params.max_significant strongest) and combines them. Reorders `probs`.
Classification combine(std::vector<double>& probs, const ModelParams& params);

}  // namespace mxguard::bayes
