// Bayes: a token-count model in an LMDB env shared by every shard and the
// console (state_dir/bayes). The tokenizer is pure; the model reads with short
// read transactions and learns in one write transaction per message.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/result.hpp"

namespace mxguard::bayes {

// The 64-bit key of one token string ("subject:free", "url:example.com",
// "viagra"): a fast non-cryptographic hash. A collision merges two tokens'
// counts, which is harmless: a million-token model has a colliding pair with
// probability about 3e-8. Stable: it is the on-disk key.
uint64_t token_hash(std::string_view token);

// Collects the tokens of one message from the MIME walker's events. Tokens
// are deduplicated per message (a token counts once per message).
class Tokenizer {
 public:
  Tokenizer();
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  void add_header(std::string_view name, std::string_view value);  // decoded header
  void add_text(std::string_view utf8);                             // body text (plain or HTML-visible)
  void add_url_host(std::string_view host);
  void add_attachment(std::string_view filename, std::string_view detected_type);
  // Ends the current text run (a part boundary), so that a word cut off at the
  // end of one add_text does not continue into the next part's text. Optional:
  // the other add_* calls end the run too.
  void end_text();

  // At most this many distinct tokens per message (bounded memory); header
  // tokens may take at most kMaxHeaderTokens of them so a header flood cannot
  // crowd out the body.
  static constexpr size_t kMaxTokens = 5000;
  static constexpr size_t kMaxHeaderTokens = 1500;

  // The distinct tokens so far, as 64-bit hashes (what the model stores), in
  // no particular order.
  std::vector<uint64_t> hashes() const;
  size_t size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct Classification {
  double spam_probability = 0.5;  // 0..1 (Robinson/Fisher combining)
  unsigned tokens_used = 0;       // significant tokens that went into it
  bool trained = false;           // false while the model has too few messages of either class
};

struct ModelCounts {
  uint64_t spam_messages = 0;
  uint64_t ham_messages = 0;
  uint64_t tokens = 0;
};

// Classifier settings. The defaults are what MxGuard ships; they were chosen
// by cross-validation on the dev corpus (src/bayes/README.md has the figures).
struct ModelParams {
  double strength = 0.45;          // Robinson's s: weight of the prior against a token's own evidence
  double prior = 0.5;              // Robinson's x: the probability of a token never seen
  double min_deviation = 0.2;      // tokens with |f(w) - 0.5| below this are ignored
  unsigned max_significant = 150;  // at most this many of the strongest tokens are combined (0: all)
  uint64_t min_spam_messages = 20; // `trained` needs this many spam ...
  uint64_t min_ham_messages = 20;  // ... and this many ham messages learned
};

// Thread-safe: classify() takes a short read transaction of its own, learn()
// a write transaction (LMDB serialises writers across threads and processes).
// Every Model of one process opened on the same state_dir shares one LMDB
// environment, as LMDB requires.
class Model {
 public:
  static std::string dir_for(const std::string& state_dir);  // state_dir + "/bayes"
  static Result<std::unique_ptr<Model>> open(const std::string& state_dir);
  static Result<std::unique_ptr<Model>> open(const std::string& state_dir, const ModelParams& params);
  ~Model();

  // Learns one message. Re-learning the same message (same `message_key`,
  // e.g. a digest of the body) as the other class moves it instead of
  // counting it twice; as the same class it is a no-op.
  Status learn(std::string_view message_key, const std::vector<uint64_t>& tokens, bool spam);
  // Learns many messages in one write transaction (training a corpus).
  struct Item { std::string key; std::vector<uint64_t> tokens; bool spam; };
  Status learn_batch(const std::vector<Item>& items);

  Classification classify(const std::vector<uint64_t>& tokens) const;
  Result<ModelCounts> counts() const;

 private:
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mxguard::bayes
