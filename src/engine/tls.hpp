// Server-side TLS over memory BIOs: the shard moves ciphertext through its
// ring; OpenSSL never touches a socket.
#pragma once

#include <openssl/ssl.h>

#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/config.hpp"
#include "mxguard/core/result.hpp"
#include "mxguard/smtp/session.hpp"

namespace mxguard::engine {

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// Something about the certificate or key that works but should not go
// unnoticed, as a log event and its key=value fields.
struct TlsWarning {
  std::string event;
  std::string fields;
};

struct ServerContext {
  SslCtxPtr ctx;
  std::vector<TlsWarning> warnings;
};

// Loads tls.certificate and tls.private_key with the tls.ciphers and
// tls.ciphersuites lists, TLS 1.2 minimum. Fails with a message naming the
// key and the file (missing, unreadable, not PEM, key not matching the
// certificate, a cipher list OpenSSL rejects); a certificate expired, not yet
// valid or expiring within 14 days of `now`, and a key file other users may
// read, come back as warnings. --check-config and the start both call it.
Result<ServerContext> make_server_context(const TlsConfig& cfg, std::time_t now);

// Client context for deliveries: TLS 1.2 or later, DANE enabled. Without
// DANE nothing is verified: opportunistic TLS (RFC 7435) and policy
// `encrypt` only promise encryption, as Postfix's "may" and "encrypt" do.
Result<SslCtxPtr> make_client_context();

struct TlsaRecord {
  uint8_t usage = 0, selector = 0, matching = 0;
  std::string data;  // binary association data
};

struct TlsClientOptions {
  std::string sni;                // the backend's host name ("" for an IP literal)
  std::vector<TlsaRecord> tlsa;   // non-empty: DANE; the peer must match one
  std::string dane_name;          // the TLSA base domain (the MX/backend host)
};

class TlsChannel {
 public:
  explicit TlsChannel(SSL_CTX* ctx);  // server side
  TlsChannel(SSL_CTX* ctx, const TlsClientOptions& client);  // client side

  ~TlsChannel();
  TlsChannel(const TlsChannel&) = delete;
  TlsChannel& operator=(const TlsChannel&) = delete;

  enum class Status { kOk, kHandshakeDone, kClosed, kError };

  // Client: starts the handshake; the ClientHello is then ready in drain().
  Status start();
  // Client with TLSA records: the peer's certificate matched one of them.
  bool dane_verified() const;

  // Feeds ciphertext from the peer; decrypted bytes are appended to `plain`.
  // kHandshakeDone is returned once, when the handshake completes.
  Status receive(std::string_view cipher, std::string& plain);
  // Encrypts application data.
  bool send(std::string_view plain);
  // Moves pending ciphertext (handshake records, alerts, data) into `wire`.
  void drain(std::string& wire);
  bool established() const { return established_; }
  smtp::TlsInfo info() const;
  const std::string& last_error() const { return error_; }

 private:
  Status read_plain(std::string& plain);
  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;  // network -> SSL
  BIO* wbio_ = nullptr;  // SSL -> network
  bool established_ = false;
  bool dane_ = false;
  std::string error_;
};

}  // namespace mxguard::engine
