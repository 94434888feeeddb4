// The per-message scanner: the MIME walker's events go through the bundle's
// Hyperscan databases (streams per part for text, HTML, raw and attachment
// content) and into the Bayes tokenizer; the built-in checks' results are set
// when known; result() adds up the rules that fired.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/auth/checks.hpp"
#include "mxguard/bayes/bayes.hpp"
#include "mxguard/dkim/dkim.hpp"
#include "mxguard/mime/walker.hpp"
#include "mxguard/scan/bundle.hpp"

struct hs_scratch;

namespace mxguard::scan {

struct Reason {
  std::string rule;
  double score = 0;
  std::string detail;  // for built-ins: what the check said
};

struct ScanResult {
  double score = 0;
  std::vector<Reason> reasons;  // fired rules with a non-zero score, highest first
  std::optional<double> bayes;  // spam probability when the model is trained
};

// The results of the checks that are not content rules; each stays empty
// when its check did not run (then its built-ins never fire).
struct CheckResults {
  std::optional<auth::SpfOutcome> spf;
  std::optional<std::vector<dkim::DkimVerdict>> dkim;
  std::optional<auth::DmarcOutcome> dmarc;
  std::optional<std::vector<auth::DnsblHit>> dnsbl;
  std::optional<std::vector<auth::DnsblHit>> uribl;
  std::optional<auth::HeloOutcome> helo;
};

// One per shard: the active rules and the shard's Hyperscan scratch.
class Scanner {
 public:
  explicit Scanner(std::shared_ptr<const CompiledRules> rules);
  ~Scanner();
  Scanner(const Scanner&) = delete;
  Scanner& operator=(const Scanner&) = delete;

  // Switches to new rules; messages being scanned finish with the rules they
  // started with (they hold them), and the scratch serves both.
  void swap(std::shared_ptr<const CompiledRules> rules);
  const std::shared_ptr<const CompiledRules>& rules() const { return rules_; }
  hs_scratch* scratch() const { return scratch_; }

 private:
  std::shared_ptr<const CompiledRules> rules_;
  hs_scratch* scratch_ = nullptr;
};

struct MessageFacts {
  std::string subject;     // decoded Subject of the message
  std::string from;        // decoded From header
  std::string from_domain; // domain of the From address, lower case ("" when none)
  unsigned from_fields = 0; // From fields in the message's header section (RFC 5322 allows one)
  std::string message_id;
  std::vector<std::string> url_hosts;  // distinct, in order, capped
  unsigned archive_members = 0;        // member names listed from archive attachments
  std::string encrypted_member;        // the first encrypted archive member ("" when none)
};

struct ScanOptions {
  bool rules = true;  // run the Hyperscan databases (off: tokens only, for learning)
  bool dkim = true;   // hash for DKIM (off when no DNS can fetch the keys anyway)
  mime::Limits limits;
};

class MessageScan final : private mime::Handler {
 public:
  explicit MessageScan(Scanner& scanner, const ScanOptions& options = {});
  ~MessageScan() override;
  MessageScan(const MessageScan&) = delete;
  MessageScan& operator=(const MessageScan&) = delete;

  // The message as received (header section and body), in any pieces.
  void feed(std::string_view bytes);
  // End of the message: closes every stream; facts() and the DKIM
  // verifier's key names are ready after it.
  void finish();

  const MessageFacts& facts() const { return facts_; }
  const dkim::DkimVerifier& dkim() const { return *dkim_; }
  const bayes::Tokenizer& tokens() const { return *tokens_; }
  uint64_t size() const { return size_; }

  // The score with every fired rule; `model` may be null (no Bayes).
  ScanResult result(const CheckResults& checks, const bayes::Model* model) const;

 private:
  struct Stream;
  void on_header(const mime::PartInfo& part, std::string_view name, std::string_view value) override;
  void on_part_begin(const mime::PartInfo& part) override;
  void on_text(const mime::PartInfo& part, mime::TextKind kind, std::string_view utf8) override;
  void on_html(const mime::PartInfo& part, std::string_view source) override;
  void on_url(const mime::PartInfo& part, std::string_view url, std::string_view host) override;
  void on_attachment_data(const mime::PartInfo& part, std::string_view decoded) override;
  void on_archive_member(const mime::PartInfo& part, const mime::ArchiveMember& member) override;
  void on_part_end(const mime::PartInfo& part, std::string_view detected_type) override;
  void on_raw_body(std::string_view bytes) override;
  void on_limit(mime::LimitHit what) override;

  void scan_string(const struct hs_database* db, std::string_view s);
  void stream_data(Target t, unsigned part, std::string_view data);
  void close_stream(Target t);
  void close_all_streams();

  Scanner& scanner_;
  std::shared_ptr<const CompiledRules> rules_;  // held: a swap mid-message does not pull them away
  std::unique_ptr<mime::Walker> walker_;
  std::unique_ptr<dkim::DkimVerifier> dkim_;
  std::unique_ptr<bayes::Tokenizer> tokens_;
  std::vector<uint8_t> fired_;
  std::vector<std::unique_ptr<Stream>> streams_;  // one slot per stream target
  std::string headers_;  // "Name: value\n" of the message's own header section
  bool headers_done_ = false;
  std::vector<mime::LimitHit> limits_hit_;
  MessageFacts facts_;
  uint64_t size_ = 0;
  bool rules_on_ = true;
  bool dkim_on_ = true;
  unsigned urls_scanned_ = 0;
  bool finished_ = false;
};

// The From address's domain in a decoded From header value ("" when none).
std::string from_domain_of(std::string_view from_header);

}  // namespace mxguard::scan
