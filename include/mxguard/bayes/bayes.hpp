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

  // The distinct tokens so far, as 64-bit hashes (what the model stores).
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

class Model {
 public:
  static std::string dir_for(const std::string& state_dir);  // state_dir + "/bayes"
  static Result<std::unique_ptr<Model>> open(const std::string& state_dir);
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
