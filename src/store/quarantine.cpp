// Quarantine records in a spool env: the zstd-compressed body in `qbodies`,
// the record in `quarantine`, and `qindex` keys for lookups by time, domain
// and recipient (also what retention purges walk).
#include "mxguard/store/quarantine.hpp"

#include <zstd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "mxguard/core/strings.hpp"

namespace mxguard::store {

namespace {

// LMDB's default maximum key size; an index key longer than this is not
// written, and lookups fall back to a wider index (see scan_recipient).
constexpr size_t kMaxIndexKey = 511;
// Cheap on the storage writer's hot path (several hundred MB/s) while still
// shrinking mail text several times.
constexpr int kZstdLevel = 1;
constexpr int64_t kDayMs = 86'400'000;
// Far above any message the SMTP server accepts; a larger size in a record
// is corruption, and must not become a huge allocation.
constexpr uint64_t kMaxRawSize = uint64_t{4} << 30;

// --- Record encoding: version byte, then little-endian fixed fields. ---

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get_le(std::string_view in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return v;
}

// --- Index keys. ---
//   't' <be64 received> <id>                   every message, by time
//   'd' <domain> NUL <be64 received> <id>      per domain with a held recipient
//   'r' <address> NUL <be64 received> <id>     per held recipient
// Names are lower case; big-endian times make a cursor walk each group in
// time order.

std::string be64(int64_t signed_v) {
  uint64_t v = static_cast<uint64_t>(std::max<int64_t>(signed_v, 0));
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i) {
    k[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return k;
}

int64_t from_be64(std::string_view k) {
  uint64_t v = 0;
  for (char c : k.substr(0, 8)) v = (v << 8) | static_cast<uint8_t>(c);
  return static_cast<int64_t>(v);
}

std::string time_key(int64_t ms, std::string_view id) {
  std::string k = "t" + be64(ms);
  k.append(id);
  return k;
}

// The prefix of one domain's or one address's keys; nullopt when the name
// cannot be a key (a NUL in it, or too long).
std::optional<std::string> scoped_prefix(char kind, std::string_view name) {
  if (name.empty() || name.find('\0') != std::string_view::npos || name.size() + 2 + 8 + 128 > kMaxIndexKey)
    return std::nullopt;
  std::string k(1, kind);
  k += to_lower(name);
  k.push_back('\0');
  return k;
}

std::optional<std::string> scoped_key(char kind, std::string_view name, int64_t ms, std::string_view id) {
  auto k = scoped_prefix(kind, name);
  if (!k || k->size() + 8 + id.size() > kMaxIndexKey) return std::nullopt;
  *k += be64(ms);
  k->append(id);
  return k;
}

// The message id an index key points at ("" for a malformed key).
std::string_view index_key_id(std::string_view key) {
  if (key.empty()) return {};
  size_t at = 0;
  if (key[0] == 't') {
    at = 1;
  } else if (key[0] == 'd' || key[0] == 'r') {
    size_t nul = key.find('\0', 1);
    if (nul == std::string_view::npos) return {};
    at = nul + 1;
  } else {
    return {};
  }
  if (key.size() <= at + 8) return {};
  return key.substr(at + 8);
}

bool contains_ci(const std::vector<std::string>& v, std::string_view s) {
  return std::any_of(v.begin(), v.end(), [&](const std::string& x) { return iequals(x, s); });
}

// Distinct lower-case domains of `addresses`, sorted.
std::set<std::string> domains_of(const std::vector<std::string>& addresses) {
  std::set<std::string> out;
  for (const auto& a : addresses) {
    std::string d = quarantine_domain_of(a);
    if (!d.empty()) out.insert(std::move(d));
  }
  return out;
}

// Our own header fields (the Received line, then the scanner's
// Authentication-Results and X-MxGuard-Score) sit above the client's
// message; X-MxGuard-Score is the last. Returns where the client's message
// starts, or 0 when our fields are not recognised. Only the first few lines
// are looked at: this runs on the engine's hot path.
uint64_t client_content_offset(std::string_view data) {
  constexpr size_t kLook = 16 * 1024;
  bool seen_score = false;
  size_t pos = 0;
  while (pos < data.size() && pos < kLook) {
    size_t eol = data.find('\n', pos);
    if (eol == std::string_view::npos) return 0;
    std::string_view line = data.substr(pos, eol + 1 - pos);
    bool continuation = line[0] == ' ' || line[0] == '\t';
    if (!continuation) {
      if (seen_score) return pos;
      if (line == "\r\n" || line == "\n") return 0;
      if (istarts_with(line, "X-MxGuard-Score:")) seen_score = true;
      else if (!istarts_with(line, "Received:") && !istarts_with(line, "Authentication-Results:")) return 0;
    }
    pos = eol + 1;
  }
  return 0;
}

struct CctxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DctxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// Compresses `data` into `qbodies` as values of at most kBodyChunkSize,
// streaming, so no second copy of a large message is made. Returns
// (compressed bytes, chunks).
Result<std::pair<uint64_t, uint32_t>> put_compressed(Txn& txn, MDB_dbi qbodies, std::string_view id,
                                                     std::string_view data) {
  // One context per thread (each shard's storage writer), reused across messages.
  thread_local std::unique_ptr<ZSTD_CCtx, CctxFree> cctx;
  if (!cctx) {
    cctx.reset(ZSTD_createCCtx());
    if (!cctx) return Error{"zstd: cannot allocate a compression context"};
  }
  ZSTD_CCtx* c = cctx.get();
  ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, kZstdLevel);
  ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);  // corruption is found on read, not delivered
  ZSTD_CCtx_setPledgedSrcSize(c, data.size());
  std::string chunk(kBodyChunkSize, '\0');
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  uint64_t stored = 0;
  uint32_t index = 0;
  for (;;) {
    ZSTD_outBuffer out{chunk.data(), chunk.size(), 0};
    size_t left;
    do {
      left = ZSTD_compressStream2(c, &out, &in, ZSTD_e_end);
      if (ZSTD_isError(left)) return Error{fmt::format("zstd: {}", ZSTD_getErrorName(left))};
    } while (left != 0 && out.pos < out.size);
    if (auto s = txn.put(qbodies, body_chunk_key(id, index), std::string_view(chunk.data(), out.pos)); !s)
      return Error{fmt::format("body: {}", s.error())};
    stored += out.pos;
    ++index;
    if (left == 0) break;
  }
  return std::pair<uint64_t, uint32_t>(stored, index);
}

// Reads and decompresses a record's body, checking it against the record:
// the chunk count, the frame's checksum and the exact size.
Result<std::string> read_body(const Txn& txn, const SpoolDbs& dbs, const QuarantineRecord& r) {
  const std::string& id = r.envelope.id;
  std::unique_ptr<ZSTD_DCtx, DctxFree> d(ZSTD_createDCtx());
  if (!d) return Error{"zstd: cannot allocate a decompression context"};
  // One spare byte: a body longer than recorded shows up instead of being cut.
  std::string out(r.raw_size + 1, '\0');
  size_t produced = 0;
  bool frame_done = false;
  for (uint32_t i = 0; i < r.chunks; ++i) {
    auto v = txn.get(dbs.qbodies, body_chunk_key(id, i));
    if (!v) return Error{v.error()};
    if (!*v) return Error{fmt::format("quarantined message {}: body chunk {} of {} is missing", id, i, r.chunks)};
    ZSTD_inBuffer in{(*v)->data(), (*v)->size(), 0};
    while (in.pos < in.size) {
      if (frame_done) return Error{fmt::format("quarantined message {}: data after the end of its body", id)};
      ZSTD_outBuffer o{out.data(), out.size(), produced};
      size_t before_in = in.pos;
      size_t rc = ZSTD_decompressStream(d.get(), &o, &in);
      if (ZSTD_isError(rc))
        return Error{fmt::format("quarantined message {}: corrupt body ({})", id, ZSTD_getErrorName(rc))};
      if (o.pos > r.raw_size) return Error{fmt::format("quarantined message {}: body longer than recorded", id)};
      if (rc == 0) frame_done = true;
      if (o.pos == produced && in.pos == before_in && !frame_done)
        return Error{fmt::format("quarantined message {}: corrupt body", id)};
      produced = o.pos;
    }
  }
  if (!frame_done || produced != r.raw_size)
    return Error{fmt::format("quarantined message {}: body truncated ({} of {} bytes)", id, produced, r.raw_size)};
  out.resize(produced);
  return out;
}

Result<QuarantineRecord> get_record(const Txn& txn, const SpoolDbs& dbs, std::string_view id, bool& found) {
  found = false;
  auto raw = txn.get(dbs.quarantine, id);
  if (!raw) return Error{raw.error()};
  if (!*raw) return QuarantineRecord{};
  found = true;
  auto r = decode_quarantine_record(**raw);
  if (!r) return Error{fmt::format("quarantine record {}: {}", id, r.error())};
  if (r->envelope.id != id) return Error{fmt::format("quarantine record {}: names another message", id)};
  return r;
}

// What an index entry's value holds: kSearchTextTag and the lower-case
// text a search looks in (sender, subject, Message-ID, held recipients), so
// a text search walks the index without reading each record. Empty (entries
// written before it, or text too long to copy) means "read the record".
constexpr char kSearchTextTag = '\x01';
constexpr size_t kMaxSearchText = 1500;

std::string search_text(const QuarantineRecord& r) {
  const Envelope& e = r.envelope;
  std::string t(1, kSearchTextTag);
  for (std::string_view part : {std::string_view(e.sender), std::string_view(e.subject), std::string_view(e.message_id)}) {
    t.append(part);
    t.push_back('\n');
  }
  for (const auto& h : r.held()) {
    t.append(h);
    t.push_back('\n');
  }
  if (t.size() > kMaxSearchText) return {};
  for (char& c : t) c = ascii_lower(c);
  return t;
}

// Whether an index entry's value rules out a search for `needle` (lower case).
bool text_rules_out(std::string_view value, std::string_view needle) {
  return !needle.empty() && !value.empty() && value[0] == kSearchTextTag && value.find(needle, 1) == std::string_view::npos;
}

Status put_index(Txn& txn, const SpoolDbs& dbs, const QuarantineRecord& r) {
  const Envelope& e = r.envelope;
  const std::string text = search_text(r);
  if (auto s = txn.put(dbs.qindex, time_key(e.received_ms, e.id), text); !s) return s;
  for (const auto& d : domains_of(r.held()))
    if (auto k = scoped_key('d', d, e.received_ms, e.id))
      if (auto s = txn.put(dbs.qindex, *k, text); !s) return s;
  for (const auto& a : r.held())
    if (auto k = scoped_key('r', a, e.received_ms, e.id))
      if (auto s = txn.put(dbs.qindex, *k, text); !s) return s;
  return {};
}

Status del_key(Txn& txn, MDB_dbi dbi, std::string_view key) {
  if (auto d = txn.del(dbi, key); !d) return Error{d.error()};
  return {};
}

// Deletes a record, its body and every index key it has.
Status remove_record(Txn& txn, const SpoolDbs& dbs, const QuarantineRecord& r) {
  const Envelope& e = r.envelope;
  if (auto s = del_key(txn, dbs.quarantine, e.id); !s) return s;
  for (uint32_t i = 0; i < r.chunks; ++i)
    if (auto s = del_key(txn, dbs.qbodies, body_chunk_key(e.id, i)); !s) return s;
  if (auto s = del_key(txn, dbs.qindex, time_key(e.received_ms, e.id)); !s) return s;
  for (const auto& d : domains_of(r.held()))
    if (auto k = scoped_key('d', d, e.received_ms, e.id))
      if (auto s = del_key(txn, dbs.qindex, *k); !s) return s;
  for (const auto& a : r.held())
    if (auto k = scoped_key('r', a, e.received_ms, e.id))
      if (auto s = del_key(txn, dbs.qindex, *k); !s) return s;
  return {};
}

// Removes whatever is stored under `id` when its record cannot be read: the
// record, body chunks by prefix, and index keys found by a full index walk
// (rare: an operator's repair or an expired corrupt record).
Status remove_unreadable(Txn& txn, const SpoolDbs& dbs, std::string_view id) {
  if (auto s = del_key(txn, dbs.quarantine, id); !s) return s;
  std::vector<std::string> keys;
  const std::string prefix = std::string(id) + "#";
  {
    Cursor cur(txn, dbs.qbodies);
    for (bool ok = cur.seek(prefix); ok && cur.key().starts_with(prefix); ok = cur.next()) keys.emplace_back(cur.key());
  }
  for (const auto& k : keys)
    if (auto s = del_key(txn, dbs.qbodies, k); !s) return s;
  keys.clear();
  {
    Cursor cur(txn, dbs.qindex);
    for (bool ok = cur.seek(""); ok; ok = cur.next())
      if (index_key_id(cur.key()) == id) keys.emplace_back(cur.key());
  }
  for (const auto& k : keys)
    if (auto s = del_key(txn, dbs.qindex, k); !s) return s;
  return {};
}

// Stops holding `gone` (compared case-insensitively). Writes the record
// back, or removes it when nobody is left; returns whether it was removed.
Result<bool> drop_recipients(Txn& txn, const SpoolDbs& dbs, QuarantineRecord& r, const std::vector<std::string>& gone) {
  std::vector<std::string> keep;
  for (const auto& h : r.held())
    if (!contains_ci(gone, h)) keep.push_back(h);
  if (keep.empty()) {
    if (auto s = remove_record(txn, dbs, r); !s) return Error{s.error()};
    return true;
  }
  const Envelope& e = r.envelope;
  std::set<std::string> kept_domains = domains_of(keep);
  for (const auto& h : r.held()) {
    if (contains_ci(keep, h)) continue;
    if (auto k = scoped_key('r', h, e.received_ms, e.id))
      if (auto s = del_key(txn, dbs.qindex, *k); !s) return Error{s.error()};
    std::string d = quarantine_domain_of(h);
    if (!kept_domains.contains(d))
      if (auto k = scoped_key('d', d, e.received_ms, e.id))
        if (auto s = del_key(txn, dbs.qindex, *k); !s) return Error{s.error()};
  }
  r.envelope.quarantined = std::move(keep);
  if (auto s = txn.put(dbs.quarantine, e.id, encode_quarantine_record(r)); !s) return Error{s.error()};
  return false;
}

// The held spelling of each of `wanted`; an error names one that is not held.
Result<std::vector<std::string>> held_spellings(const QuarantineRecord& r, const std::vector<std::string>& wanted) {
  std::vector<std::string> out;
  for (const auto& w : wanted) {
    auto it = std::find_if(r.held().begin(), r.held().end(), [&](const std::string& h) { return iequals(h, w); });
    if (it == r.held().end())
      return Error{fmt::format("{} is not held in quarantine for message {}", w, r.envelope.id)};
    if (!contains_ci(out, *it)) out.push_back(*it);
  }
  return out;
}

bool matches(const QuarantineRecord& r, const QuarantineQuery& q) {
  const Envelope& e = r.envelope;
  if (e.received_ms < q.since_ms || e.received_ms >= q.until_ms) return false;
  if (!q.text.empty()) {
    auto has = [&](std::string_view f) { return to_lower(f).find(q.text) != std::string::npos; };
    if (!has(e.sender) && !has(e.subject) && !has(e.message_id) && !std::any_of(r.held().begin(), r.held().end(), has))
      return false;
  }
  if (!q.recipients.empty())
    return std::any_of(r.held().begin(), r.held().end(), [&](const std::string& h) { return contains_ci(q.recipients, h); });
  if (!q.domains.empty())
    return std::any_of(r.held().begin(), r.held().end(),
                       [&](const std::string& h) { return contains_ci(q.domains, quarantine_domain_of(h)); });
  return true;
}

// The index prefixes whose keys hold the candidates for `q`.
std::vector<std::string> index_prefixes(const QuarantineQuery& q) {
  std::set<std::string> out;
  if (!q.recipients.empty()) {
    for (const auto& a : q.recipients) {
      // An address too long for a key is found through its domain instead.
      if (auto p = scoped_prefix('r', a)) out.insert(*p);
      else if (auto dp = scoped_prefix('d', quarantine_domain_of(a))) out.insert(*dp);
    }
  } else if (!q.domains.empty()) {
    for (const auto& d : q.domains)
      if (auto p = scoped_prefix('d', d)) out.insert(*p);
  } else {
    out.insert("t");
  }
  return {out.begin(), out.end()};
}

}  // namespace

std::string quarantine_domain_of(std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos) return "";
  return to_lower(address.substr(at + 1));
}

std::string encode_quarantine_record(const QuarantineRecord& r) {
  std::string env = encode_envelope(r.envelope);
  std::string out;
  out.reserve(env.size() + 40);
  out.push_back(static_cast<char>(kQuarantineRecordVersion));
  put_le(out, env.size(), 4);
  out += env;
  put_le(out, r.raw_size, 8);
  put_le(out, r.content_offset, 8);
  put_le(out, r.stored_size, 8);
  put_le(out, r.chunks, 4);
  put_le(out, r.releases, 4);
  return out;
}

Result<QuarantineRecord> decode_quarantine_record(std::string_view b) {
  if (b.empty()) return Error{"empty record"};
  if (static_cast<uint8_t>(b[0]) != kQuarantineRecordVersion)
    return Error{fmt::format("unsupported record version {}", static_cast<unsigned>(static_cast<uint8_t>(b[0])))};
  if (b.size() < 5) return Error{"truncated record"};
  uint64_t env_size = get_le(b, 1, 4);
  constexpr size_t kTail = 8 + 8 + 8 + 4 + 4;
  if (b.size() != 5 + env_size + kTail) return Error{"corrupt record (wrong length)"};
  auto env = decode_envelope(b.substr(5, env_size));
  if (!env) return Error{fmt::format("corrupt record envelope: {}", env.error())};
  QuarantineRecord r;
  r.envelope = std::move(*env);
  size_t at = 5 + env_size;
  r.raw_size = get_le(b, at, 8);
  r.content_offset = get_le(b, at + 8, 8);
  r.stored_size = get_le(b, at + 16, 8);
  r.chunks = static_cast<uint32_t>(get_le(b, at + 24, 4));
  r.releases = static_cast<uint32_t>(get_le(b, at + 28, 4));
  if (r.content_offset > r.raw_size || r.raw_size > kMaxRawSize || r.chunks == 0 || r.envelope.quarantined.empty())
    return Error{"corrupt record (inconsistent fields)"};
  return r;
}

Status quarantine_store(Txn& txn, const SpoolDbs& dbs, const Envelope& e, std::string_view data) {
  QuarantineRecord r;
  r.envelope = e;
  // Held once each, whatever the spelling.
  r.envelope.quarantined.clear();
  for (const auto& q : e.quarantined)
    if (!contains_ci(r.envelope.quarantined, q)) r.envelope.quarantined.push_back(q);
  if (r.envelope.quarantined.empty()) return {};
  r.raw_size = data.size();
  r.content_offset = client_content_offset(data);
  auto stored = put_compressed(txn, dbs.qbodies, e.id, data);
  if (!stored) return Error{stored.error()};
  r.stored_size = stored->first;
  r.chunks = stored->second;
  if (auto s = txn.put(dbs.quarantine, e.id, encode_quarantine_record(r)); !s) return Error{fmt::format("record: {}", s.error())};
  if (auto s = put_index(txn, dbs, r); !s) return Error{fmt::format("index: {}", s.error())};
  return {};
}

Result<std::vector<QuarantineRecord>> quarantine_list(const Spool& spool, const QuarantineQuery& q) {
  const SpoolDbs& dbs = spool.dbs();
  auto txn = Txn::begin(spool.env(), true);
  if (!txn) return Error{txn.error()};
  std::set<std::string> ids;
  // Collects the ids under `prefix` received in [since, until).
  auto scan = [&](const std::string& prefix) {
    Cursor cur(*txn, dbs.qindex);
    for (bool ok = cur.seek(prefix + be64(q.since_ms)); ok && cur.key().starts_with(prefix); ok = cur.next()) {
      std::string_view rest = cur.key().substr(prefix.size());
      if (rest.size() <= 8) continue;
      if (from_be64(rest) >= q.until_ms) break;
      ids.emplace(rest.substr(8));
    }
  };
  for (const auto& p : index_prefixes(q)) scan(p);
  std::vector<QuarantineRecord> out;
  for (const auto& id : ids) {
    bool found;
    auto r = get_record(*txn, dbs, id, found);
    if (!r) return Error{r.error()};
    if (found && matches(*r, q)) out.push_back(std::move(*r));
  }
  std::sort(out.begin(), out.end(), [](const QuarantineRecord& a, const QuarantineRecord& b) {
    if (a.envelope.received_ms != b.envelope.received_ms) return a.envelope.received_ms < b.envelope.received_ms;
    return a.envelope.id < b.envelope.id;
  });
  return out;
}

Status quarantine_walk_newest(const Spool& spool, const QuarantineQuery& q,
                              const std::optional<QuarantinePosition>& before,
                              const std::function<bool(QuarantineRecord&)>& take) {
  const SpoolDbs& dbs = spool.dbs();
  auto txn = Txn::begin(spool.env(), true);
  if (!txn) return Error{txn.error()};
  if (q.until_ms <= q.since_ms) return {};
  // One backwards cursor per index prefix, merged by their current key's
  // (time, id); a message under several prefixes comes up once per prefix,
  // one after the other, and is taken once.
  struct Stream {
    std::string prefix;
    std::unique_ptr<Cursor> cur;
    int64_t ms = 0;
    std::string_view id;
  };
  // Moves `s` to its next (older) key in range; false when it has none.
  auto settle = [&](Stream& s) {
    for (; s.cur->valid() && s.cur->key().starts_with(s.prefix); s.cur->prev()) {
      std::string_view rest = s.cur->key().substr(s.prefix.size());
      if (rest.size() <= 8) continue;
      s.ms = from_be64(rest);
      if (s.ms < q.since_ms) return false;
      s.id = rest.substr(8);
      return true;
    }
    return false;
  };
  std::vector<Stream> live;
  for (auto& p : index_prefixes(q)) {
    Stream s{std::move(p), std::make_unique<Cursor>(*txn, dbs.qindex)};
    // The first key past the range; the walk starts just before it.
    std::string end = s.prefix + be64(q.until_ms);
    if (before && before->received_ms < q.until_ms) end = s.prefix + be64(before->received_ms) + before->id;
    if (s.cur->seek(end)) s.cur->prev();
    else s.cur->last();
    if (settle(s)) live.push_back(std::move(s));
  }
  std::string last_id;
  while (!live.empty()) {
    size_t top = 0;
    for (size_t i = 1; i < live.size(); ++i)
      if (live[i].ms > live[top].ms || (live[i].ms == live[top].ms && live[i].id > live[top].id)) top = i;
    Stream& s = live[top];
    if (s.id != last_id && text_rules_out(s.cur->value(), q.text)) {
      last_id = std::string(s.id);
    } else if (s.id != last_id) {
      last_id = std::string(s.id);
      bool found;
      auto r = get_record(*txn, dbs, last_id, found);
      if (!r) return Error{r.error()};
      if (found && matches(*r, q) && !take(*r)) return {};
    }
    s.cur->prev();
    if (!settle(s)) live.erase(live.begin() + static_cast<ptrdiff_t>(top));
  }
  return {};
}

Result<std::optional<QuarantineRecord>> quarantine_get(const Spool& spool, std::string_view id) {
  auto txn = Txn::begin(spool.env(), true);
  if (!txn) return Error{txn.error()};
  bool found;
  auto r = get_record(*txn, spool.dbs(), id, found);
  if (!r) return Error{r.error()};
  if (!found) return std::optional<QuarantineRecord>();
  return std::optional<QuarantineRecord>(std::move(*r));
}

Result<std::optional<std::string>> quarantine_message(const Spool& spool, std::string_view id) {
  auto txn = Txn::begin(spool.env(), true);
  if (!txn) return Error{txn.error()};
  bool found;
  auto r = get_record(*txn, spool.dbs(), id, found);
  if (!r) return Error{r.error()};
  if (!found) return std::optional<std::string>();
  auto body = read_body(*txn, spool.dbs(), *r);
  if (!body) return Error{body.error()};
  return std::optional<std::string>(std::move(*body));
}

Result<std::string> quarantine_release(Spool& spool, std::string_view id, const std::vector<std::string>& recipients,
                                       int64_t now_ms) {
  if (recipients.empty()) return Error{"no recipient to release to"};
  int shard = shard_of_message_id(id);
  if (shard < 0) return Error{fmt::format("'{}' is not a message id", id)};
  const SpoolDbs& dbs = spool.dbs();
  auto txn = Txn::begin(spool.env(), false);
  if (!txn) return Error{txn.error()};
  bool found;
  auto r = get_record(*txn, dbs, id, found);
  if (!r) return Error{r.error()};
  if (!found) return Error{fmt::format("no such quarantined message: {}", id)};
  auto targets = held_spellings(*r, recipients);
  if (!targets) return Error{targets.error()};
  auto data = read_body(*txn, dbs, *r);
  if (!data) return Error{data.error()};

  // The copy is a new message of the same shard: its own id, only the
  // released recipients, and its queue lifetime counted from now.
  Envelope e = r->envelope;
  e.recipients = *targets;
  e.quarantined.clear();
  e.received_ms = now_ms;
  const std::string_view base = id.substr(0, id.rfind(".s"));
  for (uint32_t n = r->releases + 1;; ++n) {
    if (n > r->releases + 1000) return Error{fmt::format("no free id for a release of {}", id)};
    e.id = fmt::format("{}-r{}.s{}", base, n, shard);
    auto taken = txn->get(dbs.envelopes, e.id);
    if (!taken) return Error{taken.error()};
    if (!*taken) {
      r->releases = n;
      break;
    }
  }
  if (auto s = spool.enqueue(*txn, e, *data, now_ms); !s) return Error{s.error()};
  if (auto gone = drop_recipients(*txn, dbs, *r, *targets); !gone) return Error{gone.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return e.id;
}

Result<bool> quarantine_delete(Spool& spool, std::string_view id, const std::vector<std::string>& recipients) {
  const SpoolDbs& dbs = spool.dbs();
  auto txn = Txn::begin(spool.env(), false);
  if (!txn) return Error{txn.error()};
  bool found;
  auto r = get_record(*txn, dbs, id, found);
  if (!found && r) return Error{fmt::format("no such quarantined message: {}", id)};
  Result<bool> gone = true;
  if (!r) {
    if (!recipients.empty() || !found) return Error{r.error()};
    if (auto s = remove_unreadable(*txn, dbs, id); !s) return Error{s.error()};
  } else {
    auto targets = recipients.empty() ? Result<std::vector<std::string>>(r->held()) : held_spellings(*r, recipients);
    if (!targets) return Error{targets.error()};
    gone = drop_recipients(*txn, dbs, *r, *targets);
    if (!gone) return gone;
  }
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return gone;
}

Result<size_t> quarantine_purge(Spool& spool, int64_t now_ms,
                                const std::function<unsigned(std::string_view domain)>& days_for) {
  const SpoolDbs& dbs = spool.dbs();
  size_t removed = 0;
  for (;;) {
    // Read: up to one batch of messages with an expired domain key, walking
    // each domain's keys oldest first and stopping at its cutoff.
    struct Expired {
      std::vector<std::string> domains;
      std::vector<std::string> keys;
    };
    std::map<std::string, Expired> batch;
    std::vector<std::string> junk;  // malformed keys: deleted so the walk cannot stall on them
    {
      auto txn = Txn::begin(spool.env(), true);
      if (!txn) return Error{txn.error()};
      Cursor cur(*txn, dbs.qindex);
      bool ok = cur.seek("d");
      bool full = false;
      while (ok && !full && cur.key().starts_with("d")) {
        std::string key(cur.key());
        size_t nul = key.find('\0', 1);
        if (nul == std::string::npos || key.size() <= nul + 9) {
          junk.push_back(std::move(key));
          ok = cur.next();
          continue;
        }
        const std::string domain = key.substr(1, nul - 1);
        const std::string prefix = key.substr(0, nul + 1);
        const int64_t days = days_for(domain);
        const int64_t cutoff = days > 100'000 ? std::numeric_limits<int64_t>::min() : now_ms - days * kDayMs;
        for (; ok && cur.key().starts_with(prefix); ok = cur.next()) {
          std::string_view k = cur.key();
          if (k.size() <= prefix.size() + 8) {
            junk.emplace_back(k);
            continue;
          }
          if (from_be64(k.substr(prefix.size())) > cutoff) break;
          std::string id(k.substr(prefix.size() + 8));
          if (!batch.contains(id) && batch.size() >= kQuarantinePurgeBatch) {
            full = true;
            break;
          }
          Expired& x = batch[id];
          x.domains.push_back(domain);
          x.keys.emplace_back(k);
        }
        if (full) break;
        // On to the next domain: the first key after every key of this one.
        std::string next = prefix;
        next.back() = '\x01';
        ok = cur.seek(next);
      }
    }
    if (batch.empty() && junk.empty()) return removed;

    // Write: one transaction for the batch.
    auto txn = Txn::begin(spool.env(), false);
    if (!txn) return Error{txn.error()};
    for (const auto& k : junk)
      if (auto s = del_key(*txn, dbs.qindex, k); !s) return Error{s.error()};
    size_t batch_removed = 0;
    for (auto& [id, x] : batch) {
      // The keys found go whatever the record says, so every round makes progress.
      for (const auto& k : x.keys)
        if (auto s = del_key(*txn, dbs.qindex, k); !s) return Error{s.error()};
      bool found;
      auto r = get_record(*txn, dbs, id, found);
      if (!r) {
        // Expired and unreadable: nothing can release it any more.
        if (auto s = remove_unreadable(*txn, dbs, id); !s) return Error{s.error()};
        ++batch_removed;
        continue;
      }
      if (!found) continue;
      std::vector<std::string> gone;
      for (const auto& h : r->held())
        if (contains_ci(x.domains, quarantine_domain_of(h))) gone.push_back(h);
      if (gone.empty()) continue;
      auto out = drop_recipients(*txn, dbs, *r, gone);
      if (!out) return Error{out.error()};
      if (*out) ++batch_removed;
    }
    if (auto s = txn->commit(); !s) return Error{s.error()};
    removed += batch_removed;
  }
}

}  // namespace mxguard::store
