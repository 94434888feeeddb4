// Bayes: the tokenizer (folding, UTF-8, lengths, header prefixes, bounds) and
// the LMDB model (learn, move, batch, classify, persistence, concurrent readers).
#include <doctest.h>

#include "temp_dir.hpp"
#include <lmdb.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "mxguard/bayes/bayes.hpp"

using namespace mxguard::bayes;

namespace {

// A fresh directory under /tmp, removed with everything in it at scope exit.
using mxguard::testing::TempDir;

bool has(const Tokenizer& t, std::string_view token) {
  auto h = t.hashes();
  return std::find(h.begin(), h.end(), token_hash(token)) != h.end();
}

Tokenizer text(std::string_view s) {
  Tokenizer t;
  t.add_text(s);
  return t;
}

std::vector<uint64_t> hashes_of(const std::vector<std::string>& words) {
  std::vector<uint64_t> out;
  for (const auto& w : words) out.push_back(token_hash(w));
  return out;
}

std::unique_ptr<Model> open_model(const std::string& dir) {
  auto m = Model::open(dir);
  REQUIRE_MESSAGE(m.ok(), (m.ok() ? "" : m.error()));
  return std::move(*m);
}

// A synthetic message: a few words of its class's vocabulary plus common ones.
std::vector<uint64_t> synthetic(bool spam, int i) {
  static const std::vector<std::string> spam_words = {"viagra", "winner", "lottery", "pills", "casino",
                                                      "mortgage", "unsubscribe", "cheap", "offer", "prize"};
  static const std::vector<std::string> ham_words = {"meeting", "patch", "kernel", "review", "lunch",
                                                     "agenda", "commit", "thanks", "build", "release"};
  static const std::vector<std::string> common = {"the", "and", "you", "this", "with"};
  const auto& vocab = spam ? spam_words : ham_words;
  std::vector<std::string> words = common;
  for (int k = 0; k < 6; ++k) words.push_back(vocab[(i * 3 + k * 7) % vocab.size()]);
  words.push_back((spam ? "spam-unique-" : "ham-unique-") + std::to_string(i));
  return hashes_of(words);
}

void train(Model& m, int per_class) {
  std::vector<Model::Item> items;
  for (int i = 0; i < per_class; ++i) {
    items.push_back({"spam-" + std::to_string(i), synthetic(true, i), true});
    items.push_back({"ham-" + std::to_string(i), synthetic(false, i), false});
  }
  REQUIRE(m.learn_batch(items).ok());
}

}  // namespace

TEST_CASE("token hash is stable (the model stores it on disk)") {
  CHECK(token_hash("viagra") == token_hash("viagra"));
  CHECK(token_hash("viagra") != token_hash("Viagra"));
  CHECK(token_hash("") != token_hash("a"));
  // Pinned: changing the hash silently invalidates every trained model.
  CHECK(token_hash("viagra") == 0xdaf1bfc9e72ec40aull);
  CHECK(token_hash("subject:free money now") == 0xcbc963c890d19856ull);
  // Every tail length takes the same path as a whole-word read would.
  std::set<uint64_t> seen;
  std::string s;
  for (int i = 0; i < 40; ++i) {
    s.push_back(static_cast<char>('a' + i % 26));
    CHECK(seen.insert(token_hash(s)).second);
  }
}

TEST_CASE("tokenizer folds case and deduplicates") {
  auto t = text("Hello HELLO hello hElLo world");
  CHECK(t.size() == 2);
  CHECK(has(t, "hello"));
  CHECK(has(t, "world"));
  auto h = t.hashes();
  CHECK(std::set<uint64_t>(h.begin(), h.end()).size() == h.size());
}

TEST_CASE("tokenizer is UTF-8 aware") {
  SUBCASE("non-ASCII letters are word characters and fold") {
    auto t = text("GRÜSSE aus Köln, ÜBER Straße; ПРИВЕТ мир ΚΑΛΗΜΕΡΑ");
    CHECK(has(t, "grüsse"));
    CHECK(has(t, "köln"));
    CHECK(has(t, "über"));
    CHECK(has(t, "straße"));
    CHECK(has(t, "привет"));
    CHECK(has(t, "мир"));
    CHECK(has(t, "καλημερα"));
  }
  SUBCASE("a sequence split across two pieces stays whole") {
    Tokenizer t;
    t.add_text("gr\xc3");
    t.add_text("\xbc\xc3\x9f");
    t.add_text("e und hel");
    t.add_text("lo");
    t.end_text();
    CHECK(has(t, "grüße"));
    CHECK(has(t, "und"));
    CHECK(has(t, "hello"));
    CHECK(t.size() == 3);
  }
  SUBCASE("invisible characters do not split words; punctuation does") {
    auto t = text("vi\u200bag\u00adra\u2060 cheap\u00a0pills \u201cquoted\u201d don\u2019t");
    CHECK(has(t, "viagra"));
    CHECK(has(t, "cheap"));
    CHECK(has(t, "pills"));
    CHECK(has(t, "quoted"));
    CHECK(has(t, "don't"));
  }
  SUBCASE("fullwidth letters fold to ASCII") {
    CHECK(has(text("\uff26\uff32\uff25\uff25 money"), "free"));
  }
  SUBCASE("CJK text becomes character pairs") {
    auto t = text("日本語 猫");
    CHECK(has(t, "日本"));
    CHECK(has(t, "本語"));
    CHECK(has(t, "猫"));
    CHECK(!has(t, "日本語"));
  }
  SUBCASE("invalid bytes separate words and never crash") {
    auto t = text("abc\xff" "def\xc3" "ghi\x80jkl\xed\xa0\x80mno");
    CHECK(has(t, "abc"));
    CHECK(has(t, "def"));
    CHECK(has(t, "ghi"));
    CHECK(has(t, "jkl"));
    CHECK(has(t, "mno"));
  }
}

TEST_CASE("tokenizer word lengths, numbers and joiners") {
  std::string w40(40, 'x'), w41 = "y" + std::string(40, 'z');
  auto t = text("an ox the " + w40 + " " + w41 + " 42 7 $500 100% 1234567890 555-1234");
  CHECK(!has(t, "an"));
  CHECK(!has(t, "ox"));
  CHECK(has(t, "the"));
  CHECK(has(t, w40));
  CHECK(!has(t, w41));
  CHECK(has(t, "skip:y:40"));
  CHECK(has(t, "42"));  // short numbers are kept
  CHECK(has(t, "7"));
  CHECK(has(t, "$500"));
  CHECK(has(t, "100%"));
  CHECK(has(t, "num:10"));  // long digit runs keep only their shape
  CHECK(!has(t, "1234567890"));
  CHECK(has(t, "num:8"));  // "555-1234"

  auto j = text("don't e-mail example.com end. --dash-- a..b $ave");
  CHECK(has(j, "don't"));
  CHECK(has(j, "e-mail"));
  CHECK(has(j, "example.com"));
  CHECK(has(j, "end"));
  CHECK(has(j, "dash"));
  CHECK(has(j, "ave"));
  CHECK(!has(j, "a..b"));
}

TEST_CASE("tokenizer prefixes header tokens") {
  Tokenizer t;
  t.add_header("Subject", "Cheap PILLS now");
  t.add_header("From", "\"Bob Smith\" <Bob@Example.COM>");
  t.add_header("Received", "from mail.example.org (mail.example.org [192.0.2.7]) by mx.example.net");
  t.add_header("Content-Type", "text/html; charset=\"UTF-8\"");
  t.add_header("Message-ID", "<abc.123@mailer.example.org>");
  t.add_header("X-Mailer", "Foo Mailer 2.0");
  t.add_header("X-Custom", "ignored words here");
  CHECK(has(t, "subject:cheap"));
  CHECK(has(t, "subject:pills"));
  CHECK(!has(t, "cheap"));
  CHECK(has(t, "header:Subject"));
  CHECK(has(t, "from:bob"));
  CHECK(has(t, "from:smith"));
  CHECK(has(t, "from:addr:bob@example.com"));
  CHECK(has(t, "received:mail.example.org"));
  CHECK(has(t, "received:example.org"));
  CHECK(has(t, "received:mx.example.net"));
  CHECK(has(t, "received:ip:192.0.2"));
  CHECK(has(t, "content-type:text/html"));
  CHECK(has(t, "charset:utf-8"));
  CHECK(has(t, "message-id:@mailer.example.org"));
  CHECK(has(t, "x-mailer:foo"));
  CHECK(has(t, "x-mailer:mailer"));
  CHECK(has(t, "header:X-Custom"));
  CHECK(!has(t, "x-custom:ignored"));
  CHECK(!has(t, "ignored"));
}

TEST_CASE("tokenizer URL hosts and attachments") {
  Tokenizer t;
  t.add_url_host("www.Shop.Example.COM.");
  t.add_url_host("198.51.100.4");
  t.add_attachment("Invoice.PDF.exe", "application/x-dosexec");
  t.add_attachment("", "");
  CHECK(has(t, "url:www.shop.example.com"));
  CHECK(has(t, "url:shop.example.com"));
  CHECK(has(t, "url:example.com"));
  CHECK(!has(t, "url:com"));
  CHECK(has(t, "url:198.51.100.4"));
  CHECK(has(t, "url:ip-literal"));
  CHECK(has(t, "attach:type:application/x-dosexec"));
  CHECK(has(t, "attach:ext:exe"));
  CHECK(has(t, "attach:name:invoice.pdf.exe"));
  CHECK(has(t, "attach:type:unknown"));
  CHECK(has(t, "attach:name:none"));
}

TEST_CASE("tokenizer text runs: pending words, end_text, other events") {
  Tokenizer t;
  t.add_text("alpha beta");
  CHECK(has(t, "beta"));  // visible before the run ends
  CHECK(t.size() == 2);
  t.add_text("gamma");  // continues the pending word
  CHECK(has(t, "betagamma"));
  CHECK(!has(t, "beta"));
  t.end_text();
  t.add_text("delta");
  CHECK(has(t, "betagamma"));
  CHECK(has(t, "delta"));
  t.add_url_host("example.org");  // ends the run too
  t.add_text("epsilon");
  CHECK(has(t, "delta"));
  CHECK(has(t, "epsilon"));
  CHECK(!has(t, "deltaepsilon"));

  Tokenizer moved = std::move(t);
  CHECK(has(moved, "epsilon"));
}

TEST_CASE("tokenizer output does not depend on how the text is split") {
  // Mixed scripts, invalid bytes, joiners, long runs: split at every kind of place.
  std::string sample =
      "Dear Friend, WIN $1,000,000 now!!! Visit www.example.com/offer?id=12345678 "
      "Gr\xc3\xbc\xc3\x9f" "e \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 "
      "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e don't e-mail \xff\xc3 x "
      "vi\xe2\x80\x8b" "agra " + std::string(60, 'q') + " 100% $5 end.";
  Tokenizer whole;
  whole.add_text(sample);
  auto expect = whole.hashes();
  std::sort(expect.begin(), expect.end());
  uint64_t seed = 12345;
  for (int round = 0; round < 200; ++round) {
    Tokenizer t;
    size_t at = 0;
    while (at < sample.size()) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      size_t n = 1 + (seed >> 33) % 9;
      t.add_text(std::string_view(sample).substr(at, n));
      at += n;
    }
    auto got = t.hashes();
    std::sort(got.begin(), got.end());
    REQUIRE(got == expect);
  }
}

TEST_CASE("tokenizer keeps at most kMaxTokens distinct tokens") {
  Tokenizer t;
  std::string body;
  for (int i = 0; i < 12000; ++i) body += "word" + std::to_string(i) + " ";
  t.add_text(body);
  CHECK(t.size() == Tokenizer::kMaxTokens);
  CHECK(t.hashes().size() == Tokenizer::kMaxTokens);
  CHECK(has(t, "word0"));
  CHECK(!has(t, "word11999"));

  // A header flood cannot crowd out the body.
  Tokenizer h;
  for (int i = 0; i < 3000; ++i) h.add_header("X-Junk-" + std::to_string(i), "v");
  CHECK(h.size() == Tokenizer::kMaxHeaderTokens);
  h.add_text("bodyword");
  h.end_text();
  CHECK(has(h, "bodyword"));
}

TEST_CASE("model: open creates the env, learn counts, relearn moves") {
  TempDir tmp;
  auto m = open_model(tmp.path());
  CHECK(Model::dir_for(tmp.path()) == tmp.path() + "/bayes");
  CHECK(std::filesystem::exists(tmp.path() + "/bayes/data.mdb"));
  auto c = m->counts();
  REQUIRE(c.ok());
  CHECK(c->spam_messages == 0);
  CHECK(c->ham_messages == 0);
  CHECK(c->tokens == 0);

  auto toks = hashes_of({"alpha", "beta", "gamma", "beta"});  // duplicates count once
  REQUIRE(m->learn("msg-1", toks, true).ok());
  c = m->counts();
  CHECK(c->spam_messages == 1);
  CHECK(c->ham_messages == 0);
  CHECK(c->tokens == 3);

  SUBCASE("same class again is a no-op") {
    REQUIRE(m->learn("msg-1", toks, true).ok());
    c = m->counts();
    CHECK(c->spam_messages == 1);
    CHECK(c->ham_messages == 0);
    CHECK(c->tokens == 3);
  }
  SUBCASE("the other class moves the message") {
    REQUIRE(m->learn("msg-1", toks, false).ok());
    c = m->counts();
    CHECK(c->spam_messages == 0);
    CHECK(c->ham_messages == 1);
    CHECK(c->tokens == 3);
    REQUIRE(m->learn("msg-1", toks, true).ok());  // and back
    c = m->counts();
    CHECK(c->spam_messages == 1);
    CHECK(c->ham_messages == 0);
    CHECK(c->tokens == 3);
  }
  SUBCASE("a move keeps the tokens, now counted for the other class") {
    REQUIRE(m->learn("msg-2", hashes_of({"delta"}), false).ok());
    CHECK(m->counts()->tokens == 4);
    REQUIRE(m->learn("msg-2", hashes_of({"delta"}), true).ok());
    c = m->counts();
    CHECK(c->tokens == 4);
    CHECK(c->spam_messages == 2);
    CHECK(c->ham_messages == 0);
  }
  SUBCASE("an empty key is refused") {
    CHECK(!m->learn("", toks, true).ok());
    CHECK(m->counts()->spam_messages == 1);
  }
  SUBCASE("a very long key works (hashed to fit LMDB's key limit)") {
    std::string key(2000, 'k');
    REQUIRE(m->learn(key, toks, false).ok());
    REQUIRE(m->learn(key, toks, false).ok());
    CHECK(m->counts()->ham_messages == 1);
  }
}

TEST_CASE("model: learn_batch in one transaction") {
  TempDir tmp;
  auto m = open_model(tmp.path());
  std::vector<Model::Item> items = {
      {"a", hashes_of({"one", "two"}), true},
      {"b", hashes_of({"two", "three"}), false},
      {"c", hashes_of({"four"}), false},
      {"a", hashes_of({"one", "two"}), false},  // the same message later in the batch: a move
      {"c", hashes_of({"four"}), false},        // and a no-op
  };
  REQUIRE(m->learn_batch(items).ok());
  auto c = m->counts();
  CHECK(c->spam_messages == 0);
  CHECK(c->ham_messages == 3);
  CHECK(c->tokens == 4);
  REQUIRE(m->learn_batch({}).ok());
  CHECK(!m->learn_batch({{"", {}, true}}).ok());
  CHECK(m->counts()->ham_messages == 3);  // the failed batch wrote nothing
}

TEST_CASE("model: untrained until enough of both classes") {
  TempDir tmp;
  auto m = open_model(tmp.path());
  auto r = m->classify(synthetic(true, 1));
  CHECK(!r.trained);
  CHECK(r.spam_probability == 0.5);
  CHECK(r.tokens_used == 0);

  train(*m, 19);
  r = m->classify(synthetic(true, 1));
  CHECK(!r.trained);
  CHECK(r.spam_probability == 0.5);

  train(*m, 20);  // adds spam-19 and ham-19
  r = m->classify(synthetic(true, 1));
  CHECK(r.trained);
}

TEST_CASE("model: classifies spammy and hammy token sets") {
  TempDir tmp;
  auto m = open_model(tmp.path());
  train(*m, 30);
  auto spam = m->classify(hashes_of({"viagra", "lottery", "casino", "prize", "cheap", "the", "and", "unknownword"}));
  CHECK(spam.trained);
  CHECK(spam.spam_probability > 0.99);
  CHECK(spam.tokens_used == 5);  // common and unknown words are not significant
  auto ham = m->classify(hashes_of({"meeting", "kernel", "patch", "review", "agenda", "the", "you"}));
  CHECK(ham.spam_probability < 0.01);
  CHECK(ham.tokens_used == 5);
  auto neutral = m->classify(hashes_of({"the", "and", "you", "never-seen"}));
  CHECK(neutral.trained);
  CHECK(neutral.tokens_used == 0);
  CHECK(neutral.spam_probability == doctest::Approx(0.5));
  auto mixed = m->classify(hashes_of({"viagra", "lottery", "meeting", "kernel"}));
  CHECK(mixed.spam_probability > 0.2);
  CHECK(mixed.spam_probability < 0.8);
  auto empty = m->classify({});
  CHECK(empty.trained);
  CHECK(empty.spam_probability == 0.5);
}

TEST_CASE("model: tokenizer output end to end") {
  TempDir tmp;
  auto m = open_model(tmp.path());
  std::vector<Model::Item> items;
  for (int i = 0; i < 25; ++i) {
    Tokenizer s;
    s.add_header("Subject", "WIN a FREE prize now " + std::to_string(i));
    s.add_text("Claim your free prize! Click here to unsubscribe. Limited offer $500");
    s.add_url_host("win-" + std::to_string(i) + ".prizes.example");
    items.push_back({"s" + std::to_string(i), s.hashes(), true});
    Tokenizer h;
    h.add_header("Subject", "Re: build failure on arm64 " + std::to_string(i));
    h.add_text("The kernel patch breaks the build; can you review the commit before the release?");
    h.add_url_host("git.example.org");
    items.push_back({"h" + std::to_string(i), h.hashes(), false});
  }
  REQUIRE(m->learn_batch(items).ok());
  Tokenizer q;
  q.add_header("Subject", "Free prize inside");
  q.add_text("You are a winner: claim your prize, limited offer");
  q.add_url_host("claim.prizes.example");
  CHECK(m->classify(q.hashes()).spam_probability > 0.9);
  Tokenizer r;
  r.add_header("Subject", "Re: patch review");
  r.add_text("Thanks, the patch fixes the build. I will commit it.");
  CHECK(m->classify(r.hashes()).spam_probability < 0.1);
}

TEST_CASE("model: persists across reopen; params change classification only") {
  TempDir tmp;
  double before = 0;
  auto probe = hashes_of({"viagra", "casino", "meeting"});
  {
    auto m = open_model(tmp.path());
    train(*m, 25);
    before = m->classify(probe).spam_probability;
  }
  auto m = open_model(tmp.path());
  auto c = m->counts();
  CHECK(c->spam_messages == 25);
  CHECK(c->ham_messages == 25);
  CHECK(m->classify(probe).spam_probability == doctest::Approx(before));

  ModelParams strict;
  strict.min_spam_messages = 100;
  auto m2 = Model::open(tmp.path(), strict);
  REQUIRE(m2.ok());
  CHECK(!(*m2)->classify(probe).trained);  // a second Model on the same env in one process
  CHECK((*m2)->counts()->spam_messages == 25);
}

TEST_CASE("model: records carry a version byte (on-disk format)") {
  TempDir tmp;
  {
    auto m = open_model(tmp.path());
    REQUIRE(m->learn("k", {0x0102030405060708ull}, true).ok());
    REQUIRE(m->learn("k2", {0x0102030405060708ull}, false).ok());
  }
  // Read the raw records with plain LMDB (no Model open in this process now).
  MDB_env* env = nullptr;
  REQUIRE(mdb_env_create(&env) == 0);
  mdb_env_set_maxdbs(env, 4);
  REQUIRE(mdb_env_open(env, (tmp.path() + "/bayes").c_str(), 0, 0640) == 0);
  MDB_txn* txn = nullptr;
  REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
  MDB_dbi tokens, totals, learned;
  REQUIRE(mdb_dbi_open(txn, "tokens", MDB_INTEGERKEY, &tokens) == 0);
  REQUIRE(mdb_dbi_open(txn, "totals", 0, &totals) == 0);
  REQUIRE(mdb_dbi_open(txn, "learned", 0, &learned) == 0);
  uint64_t key = 0x0102030405060708ull;  // the hash itself, native byte order
  MDB_val k{8, &key}, v;
  REQUIRE(mdb_get(txn, tokens, &k, &v) == 0);
  CHECK(std::string(static_cast<char*>(v.mv_data), v.mv_size) == std::string("\x01\x01\x01", 3));
  MDB_val tk{8, const_cast<char*>("messages")};
  REQUIRE(mdb_get(txn, totals, &tk, &v) == 0);
  CHECK(std::string(static_cast<char*>(v.mv_data), v.mv_size) == std::string("\x01\x01\x01", 3));
  MDB_val lk{1, const_cast<char*>("k")};
  REQUIRE(mdb_get(txn, learned, &lk, &v) == 0);
  CHECK(std::string(static_cast<char*>(v.mv_data), v.mv_size) == std::string("\x01s", 2));
  // A record of an unknown version is skipped by classify and replaced by learn.
  MDB_val bad{2, const_cast<char*>("\x09\x01")};
  REQUIRE(mdb_put(txn, tokens, &k, &bad, 0) == 0);
  REQUIRE(mdb_txn_commit(txn) == 0);
  mdb_env_close(env);

  auto m = open_model(tmp.path());
  ModelParams loose;
  loose.min_spam_messages = loose.min_ham_messages = 1;
  auto ml = Model::open(tmp.path(), loose);
  REQUIRE(ml.ok());
  CHECK((*ml)->classify({0x0102030405060708ull}).tokens_used == 0);
  REQUIRE(m->learn("k3", {0x0102030405060708ull}, true).ok());
  CHECK((*ml)->counts()->tokens == 1);
}

TEST_CASE("model: a reader classifies while another instance writes") {
  TempDir tmp;
  auto writer = open_model(tmp.path());
  train(*writer, 20);
  auto reader = open_model(tmp.path());
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::thread t([&] {
    for (int i = 100; i < 130; ++i)  // each learn is a durable commit: keep the count small
      if (!writer->learn("w-" + std::to_string(i), synthetic(i % 2 == 0, i), i % 2 == 0).ok()) ++bad;
    done = true;
  });
  int reads = 0;
  while (!done || reads < 10) {
    auto r = reader->classify(hashes_of({"viagra", "lottery", "casino"}));
    if (!r.trained || r.spam_probability < 0.9) ++bad;
    ++reads;
  }
  t.join();
  CHECK(bad == 0);
  auto c = reader->counts();
  CHECK(c->spam_messages == 35);
  CHECK(c->ham_messages == 35);
}

TEST_CASE("model: another process learns while this one classifies") {
  TempDir tmp;
  {
    auto m = open_model(tmp.path());
    train(*m, 20);
  }  // closed before fork: the child must not inherit an open env
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto m = Model::open(tmp.path());
    int rc = m.ok() ? 0 : 1;
    for (int i = 0; rc == 0 && i < 20; ++i)
      if (!(*m)->learn("child-" + std::to_string(i), synthetic(true, i), true).ok()) rc = 2;
    _exit(rc);
  }
  auto m = open_model(tmp.path());
  int status = 0, bad = 0;
  while (waitpid(pid, &status, WNOHANG) == 0)
    if (m->classify(hashes_of({"viagra", "casino"})).spam_probability < 0.9) ++bad;
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(bad == 0);
  CHECK(m->counts()->spam_messages == 40);
}
