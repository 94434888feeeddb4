// STARTTLS for the SMTP server with OpenSSL 3 memory BIOs.
#include "tls.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "mxguard/core/log.hpp"

namespace mxguard::engine {

namespace {
std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

constexpr std::time_t kExpiryWarning = 14 * 86'400;

Result<struct stat> stat_file(std::string_view key, const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Error{fmt::format("{} {}: {}", key, path, std::strerror(errno))};
  if (!S_ISREG(st.st_mode)) return Error{fmt::format("{} {}: not a regular file", key, path)};
  return st;
}

std::optional<std::time_t> epoch_of(const ASN1_TIME* t) {
  struct tm tm {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return std::nullopt;
  return timegm(&tm);
}

std::string iso8601(std::time_t t) {
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::vector<TlsWarning> validity_warnings(X509* cert, const std::string& file, std::time_t now) {
  std::vector<TlsWarning> out;
  auto not_before = epoch_of(X509_get0_notBefore(cert));
  auto not_after = epoch_of(X509_get0_notAfter(cert));
  if (not_after && *not_after < now) {
    out.push_back({"tls.certificate_expired", fmt::format("file={} not_after={} note=\"senders that verify will "
                                                          "refuse it\"", log::q(file), iso8601(*not_after))});
  } else if (not_after && *not_after - now < kExpiryWarning) {
    out.push_back({"tls.certificate_expiring", fmt::format("file={} not_after={} days_left={}", log::q(file),
                                                           iso8601(*not_after), (*not_after - now) / 86'400)});
  }
  if (not_before && *not_before > now)
    out.push_back({"tls.certificate_not_yet_valid", fmt::format("file={} not_before={}", log::q(file),
                                                                iso8601(*not_before))});
  return out;
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

size_t tls13_suites(SSL_CTX* ctx) {
  size_t n = 0;
  STACK_OF(SSL_CIPHER)* all = SSL_CTX_get_ciphers(ctx);
  for (int i = 0; i < sk_SSL_CIPHER_num(all); ++i)
    if (std::strcmp(SSL_CIPHER_get_version(sk_SSL_CIPHER_value(all, i)), "TLSv1.3") == 0) ++n;
  return n;
}

}  // namespace

Result<ServerContext> make_server_context(const TlsConfig& cfg, std::time_t now) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return Error{"SSL_CTX_new: " + openssl_errors()};
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                     SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Sessions are not resumed across connections: MTAs rarely do, and a cache
  // would be shared mutable state between shards.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  // OpenSSL skips names it does not know as long as one matches; a list with
  // none is an error here rather than a server that offers nothing.
  if (SSL_CTX_set_cipher_list(ctx.get(), cfg.ciphers.c_str()) != 1)
    return Error{fmt::format("tls.ciphers '{}': no cipher OpenSSL knows ({})", cfg.ciphers, openssl_errors())};
  if (SSL_CTX_set_ciphersuites(ctx.get(), cfg.ciphersuites.c_str()) != 1 || tls13_suites(ctx.get()) == 0)
    return Error{fmt::format("tls.ciphersuites '{}': no TLS 1.3 suite OpenSSL knows", cfg.ciphersuites)};

  auto cert_stat = stat_file("tls.certificate", cfg.certificate);
  if (!cert_stat) return Error{cert_stat.error()};
  auto key_stat = stat_file("tls.private_key", cfg.private_key);
  if (!key_stat) return Error{key_stat.error()};
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cfg.certificate.c_str()) != 1)
    return Error{fmt::format("tls.certificate {}: {}", cfg.certificate, openssl_errors())};
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new_file(cfg.private_key.c_str(), "r"), BIO_free);
  if (!key_bio) return Error{fmt::format("tls.private_key {}: {}", cfg.private_key, openssl_errors())};
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!key)
    return Error{fmt::format("tls.private_key {}: not a PEM private key without a passphrase ({})",
                             cfg.private_key, openssl_errors())};
  X509* cert = SSL_CTX_get0_certificate(ctx.get());
  if (X509_check_private_key(cert, key.get()) != 1) {
    ERR_clear_error();
    return Error{fmt::format("tls.private_key {} does not match tls.certificate {}", cfg.private_key,
                             cfg.certificate)};
  }
  if (SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1)
    return Error{fmt::format("tls.private_key {}: {}", cfg.private_key, openssl_errors())};

  ServerContext out{std::move(ctx), validity_warnings(cert, cfg.certificate, now)};
  if (key_stat->st_mode & (S_IROTH | S_IWOTH))
    out.warnings.push_back({"tls.private_key_permissions",
                            fmt::format("file={} mode={:04o} note=\"other users can read the key; chmod 600 or 640\"",
                                        log::q(cfg.private_key), key_stat->st_mode & 07777)});
  return out;
}

TlsChannel::TlsChannel(SSL_CTX* ctx) {
  ssl_ = SSL_new(ctx);
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(rbio_, -1);  // empty read BIO means "want more", not EOF
  SSL_set_bio(ssl_, rbio_, wbio_);    // ssl_ now owns both BIOs
  SSL_set_accept_state(ssl_);
}

Result<SslCtxPtr> make_client_context() {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return Error{"SSL_CTX_new: " + openssl_errors()};
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  if (SSL_CTX_dane_enable(ctx.get()) <= 0) return Error{"SSL_CTX_dane_enable: " + openssl_errors()};
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  return ctx;
}

TlsChannel::TlsChannel(SSL_CTX* ctx, const TlsClientOptions& client) {
  ssl_ = SSL_new(ctx);
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(rbio_, -1);
  SSL_set_bio(ssl_, rbio_, wbio_);
  SSL_set_connect_state(ssl_);
  if (!client.sni.empty()) SSL_set_tlsext_host_name(ssl_, client.sni.c_str());
  if (!client.tlsa.empty()) {
    // RFC 7672: the TLSA records decide; a mismatch fails the handshake
    // (SSL_VERIFY_PEER), which the delivery turns into a deferral.
    const char* base = client.dane_name.empty() ? nullptr : client.dane_name.c_str();
    if (SSL_dane_enable(ssl_, base) > 0) {
      dane_ = true;
      SSL_dane_set_flags(ssl_, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
      for (const auto& t : client.tlsa)
        SSL_dane_tlsa_add(ssl_, t.usage, t.selector, t.matching,
                          reinterpret_cast<const unsigned char*>(t.data.data()), t.data.size());
      SSL_set_verify(ssl_, SSL_VERIFY_PEER, nullptr);
    }
  }
}

TlsChannel::Status TlsChannel::start() {
  std::string none;
  Status s = receive({}, none);
  return s == Status::kHandshakeDone ? Status::kOk : s;
}

bool TlsChannel::dane_verified() const {
  return dane_ && established_ && SSL_get_verify_result(ssl_) == X509_V_OK && SSL_get0_dane_authority(ssl_, nullptr, nullptr) >= 0;
}

TlsChannel::~TlsChannel() { SSL_free(ssl_); }

TlsChannel::Status TlsChannel::receive(std::string_view cipher, std::string& plain) {
  if (!cipher.empty() && BIO_write(rbio_, cipher.data(), static_cast<int>(cipher.size())) <= 0) {
    error_ = "BIO_write failed";
    return Status::kError;
  }
  bool completed_now = false;
  if (!established_) {
    int rc = SSL_do_handshake(ssl_);
    if (rc != 1) {
      int err = SSL_get_error(ssl_, rc);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Status::kOk;
      error_ = openssl_errors();
      return Status::kError;
    }
    established_ = true;
    completed_now = true;
  }
  Status s = read_plain(plain);
  if (s != Status::kOk) return s;
  return completed_now ? Status::kHandshakeDone : Status::kOk;
}

TlsChannel::Status TlsChannel::read_plain(std::string& plain) {
  char buf[16384];
  while (true) {
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n > 0) {
      plain.append(buf, static_cast<size_t>(n));
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Status::kOk;
    if (err == SSL_ERROR_ZERO_RETURN) return Status::kClosed;
    error_ = openssl_errors();
    return Status::kError;
  }
}

bool TlsChannel::send(std::string_view plain) {
  while (!plain.empty()) {
    int n = SSL_write(ssl_, plain.data(), static_cast<int>(std::min<size_t>(plain.size(), 1 << 20)));
    if (n <= 0) {
      error_ = openssl_errors();
      return false;
    }
    plain.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void TlsChannel::drain(std::string& wire) {
  char* data;
  long n = BIO_get_mem_data(wbio_, &data);
  if (n > 0) {
    wire.append(data, static_cast<size_t>(n));
    (void)BIO_reset(wbio_);
  }
}

smtp::TlsInfo TlsChannel::info() const {
  smtp::TlsInfo i;
  i.version = SSL_get_version(ssl_);
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
  i.cipher = c ? SSL_CIPHER_get_name(c) : "unknown";
  i.bits = c ? SSL_CIPHER_get_bits(c, nullptr) : 0;
  return i;
}

}  // namespace mxguard::engine
