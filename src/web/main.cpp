// mxguard-web: the customer dashboard's HTTPS server (DESIGN.md section 2).
// libmicrohttpd (GnuTLS) carries the requests; web_core.cpp decides them.
// It reads the state dir's LMDB like the console and never needs the engine.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/stat.h>

#include <microhttpd.h>
#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "mxguard/core/config.hpp"
#include "mxguard/core/log.hpp"
#include "mxguard/store/config_store.hpp"
#include "digest_links.hpp"
#include "domains_api.hpp"
#include "feed_api.hpp"
#include "quarantine_api.hpp"
#include "recipients_api.hpp"
#include "users_api.hpp"
#include "web_core.hpp"

using namespace mxguard;

namespace {

constexpr size_t kMaxBody = 64 * 1024;

struct Pending {
  std::string body;
  bool too_large = false;
};

struct Server {
  web::Api* api;
};

std::optional<std::string> read_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

MHD_Result collect_header(void* cls, MHD_ValueKind, const char* key, const char* value) {
  auto* req = static_cast<web::Request*>(cls);
  std::string name = key ? key : "";
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  req->headers.emplace(std::move(name), value ? value : "");
  return MHD_YES;
}

MHD_Result collect_query(void* cls, MHD_ValueKind, const char* key, const char* value) {
  if (key) static_cast<web::Request*>(cls)->query.emplace(key, value ? value : "");
  return MHD_YES;
}

std::string client_address(MHD_Connection* conn) {
  const MHD_ConnectionInfo* ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!ci || !ci->client_addr) return "?";
  char buf[INET6_ADDRSTRLEN] = "?";
  if (ci->client_addr->sa_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(ci->client_addr)->sin_addr, buf, sizeof buf);
  else if (ci->client_addr->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(ci->client_addr)->sin6_addr, buf, sizeof buf);
  return buf;
}

// A streamed body (web::Response::stream): the chunk being sent and where.
struct Streaming {
  std::function<std::optional<std::string>()> next;
  std::string chunk;
  size_t sent = 0;
};

// libmicrohttpd asks for more of a streamed body from the connection's own
// thread (thread per connection), so next() may wait; it bounds its waits.
ssize_t read_stream(void* cls, uint64_t, char* buf, size_t max) {
  auto* s = static_cast<Streaming*>(cls);
  while (s->sent >= s->chunk.size()) {
    std::optional<std::string> next;
    try {
      next = s->next();
    } catch (const std::exception& e) {
      // As for a handler: the failure ends this response, not the server.
      log::error("web.stream_failed", "error={}", log::q(e.what()));
      return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (!next) return MHD_CONTENT_READER_END_OF_STREAM;
    s->chunk = std::move(*next);
    s->sent = 0;
  }
  size_t n = std::min(max, s->chunk.size() - s->sent);
  std::memcpy(buf, s->chunk.data() + s->sent, n);
  s->sent += n;
  return static_cast<ssize_t>(n);
}

void free_stream(void* cls) { delete static_cast<Streaming*>(cls); }

MHD_Result send(MHD_Connection* conn, web::Response& r) {
  if (r.stream) {
    auto* s = new Streaming{std::move(r.stream), {}, 0};
    MHD_Response* resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, &read_stream, s, &free_stream);
    if (!resp) {
      delete s;
      return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type.c_str());
    for (const auto& [k, v] : r.headers) MHD_add_response_header(resp, k.c_str(), v.c_str());
    MHD_Result ok = MHD_queue_response(conn, r.status, resp);
    MHD_destroy_response(resp);
    return ok;
  }
  if (!r.file.empty()) {
    auto content = read_file(r.file);
    if (!content) {
      web::Response nf = web::json_error(404, "not_found", "no such file");
      web::add_security_headers(nf);
      r = std::move(nf);
    } else {
      r.body = std::move(*content);
    }
  }
  MHD_Response* resp = MHD_create_response_from_buffer(r.body.size(), r.body.data(), MHD_RESPMEM_MUST_COPY);
  if (!resp) return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type.c_str());
  for (const auto& [k, v] : r.headers) MHD_add_response_header(resp, k.c_str(), v.c_str());
  MHD_Result ok = MHD_queue_response(conn, r.status, resp);
  MHD_destroy_response(resp);
  return ok;
}

MHD_Result on_request(void* cls, MHD_Connection* conn, const char* url, const char* method, const char*,
                      const char* upload_data, size_t* upload_size, void** con_cls) {
  auto* srv = static_cast<Server*>(cls);
  if (!*con_cls) {
    *con_cls = new Pending;
    return MHD_YES;
  }
  auto* p = static_cast<Pending*>(*con_cls);
  if (*upload_size != 0) {
    if (p->body.size() + *upload_size > kMaxBody) p->too_large = true;
    else p->body.append(upload_data, *upload_size);
    *upload_size = 0;
    return MHD_YES;
  }
  web::Request req;
  req.method = method;
  req.path = url;
  req.body = std::move(p->body);
  req.client = client_address(conn);
  MHD_get_connection_values(conn, MHD_HEADER_KIND, &collect_header, &req);
  MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, &collect_query, &req);
  web::Response r;
  if (p->too_large) {
    r = web::json_error(413, "too_large", "request body too large");
    web::add_security_headers(r);
  } else {
    // A handler's exception ends this request, never the server (libmicrohttpd
    // threads would otherwise terminate the process).
    try {
      r = srv->api->handle(req, web::Clock::now());
    } catch (const std::exception& e) {
      log::error("web.handler_failed", "method={} path={} error={}", req.method, log::q(req.path), log::q(e.what()));
      r = web::json_error(500, "internal", "internal error");
      web::add_security_headers(r);
    }
  }
  if (r.status >= 400 && req.path.starts_with("/api/"))
    log::info("web.request", "method={} path={} client={} status={}", req.method, log::q(req.path), req.client,
              r.status);
  return send(conn, r);
}

void on_completed(void*, MHD_Connection*, void** con_cls, MHD_RequestTerminationCode) {
  delete static_cast<Pending*>(*con_cls);
  *con_cls = nullptr;
}

// Responses go out as TLS records in several writes; with Nagle's algorithm
// each write after the first waited for the client's delayed ACK, so a
// 40 kB JSON answer took ~15 ms and a 400 kB one ~200 ms on loopback.
void on_connection(void*, MHD_Connection* conn, void**, MHD_ConnectionNotificationCode code) {
  if (code != MHD_CONNECTION_NOTIFY_STARTED) return;
  const MHD_ConnectionInfo* ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  int one = 1;
  if (ci) setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

bool is_loopback(const ListenAddress& a) { return a.host == "127.0.0.1" || a.host == "::1"; }

std::string default_static_dir() {
  struct stat st {};
  if (::stat(MXGUARD_WEB_STATIC_INSTALL_DIR "/index.html", &st) == 0) return MXGUARD_WEB_STATIC_INSTALL_DIR;
  return MXGUARD_WEB_STATIC_SOURCE_DIR;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mxguard-web: the customer dashboard and its API over HTTPS"};
  std::string config_path;
  app.add_option("--config", config_path, "The TOML config file (default: $MXGUARD_CONFIG or /etc/mxguard/mxguard.toml)");
  CLI11_PARSE(app, argc, argv);

  Config cfg;
  try {
    cfg = resolve_config(config_path);
  } catch (const ConfigError& e) {
    fmt::print(stderr, "mxguard-web: {}\n", e.what());
    return 2;
  }
  if (sodium_init() < 0) {
    fmt::print(stderr, "mxguard-web: libsodium failed to initialise\n");
    return 1;
  }
  if (cfg.web.listen.empty()) {
    fmt::print(stderr, "mxguard-web: web.listen is empty; nothing to serve\n");
    return 2;
  }
  bool tls = !cfg.web.certificate.empty();
  if (!tls) {
    bool all_loopback = std::all_of(cfg.web.listen.begin(), cfg.web.listen.end(), is_loopback);
    if (!cfg.web.insecure_http || !all_loopback) {
      fmt::print(stderr,
                 "mxguard-web: no certificate (web.certificate or tls.certificate); plain HTTP needs "
                 "web.insecure_http = true and loopback web.listen addresses\n");
      return 2;
    }
  }
  std::string cert, key;
  if (tls) {
    auto c = read_file(cfg.web.certificate), k = read_file(cfg.web.private_key);
    if (!c || !k) {
      fmt::print(stderr, "mxguard-web: cannot read {}\n", !c ? cfg.web.certificate : cfg.web.private_key);
      return 1;
    }
    cert = std::move(*c);
    key = std::move(*k);
  }

  auto store = store::ConfigStore::open(cfg.state_dir);
  if (!store) {
    fmt::print(stderr, "mxguard-web: {}\n", store.error());
    return 1;
  }
  store::ConfigStore* st = store->get();

  web::ApiOptions opts;
  opts.public_url = cfg.web.public_url;
  opts.secure = tls;
  opts.static_dir = cfg.web.static_dir.empty() ? default_static_dir() : cfg.web.static_dir;
  opts.session_idle = cfg.web.session_idle;
  opts.session_lifetime = cfg.web.session_lifetime;
  web::DomainsApi domains(cfg, *st);
  web::QuarantineApi quarantine(cfg, *st);
  web::RecipientsApi recipients(cfg, *st);
  web::DigestLinks digest_links(cfg, *st);
  web::UsersApi users(cfg, *st);
  web::FeedApi feed(cfg, *st);
  web::Api api(opts, [st](const std::string& name) -> std::optional<store::User> {
    // Connections have their own threads: the store is read under the one lock.
    std::lock_guard lock(web::operations_mutex());
    auto u = st->user(name);
    if (!u) {
      log::error("web.store_read_failed", "error={}", log::q(u.error()));
      return std::nullopt;
    }
    return *u;
  }, [&](const web::Request& req, const web::Session* s) -> std::optional<web::Response> {
    // Each API answers the paths it knows and nullopt for the rest.
    if (auto r = recipients.handle(req, s)) return r;  // before domains: it owns /api/v1/domains/{d}/...
    if (auto r = domains.handle(req, s)) return r;
    if (auto r = quarantine.handle(req, s)) return r;
    if (auto r = users.handle(req, s)) return r;
    if (auto r = feed.handle(req, s)) return r;
    return std::nullopt;
  }, [&](const web::Request& req, bool same_origin) { return digest_links.handle(req, same_origin); });
  feed.set_session_alive([&api](std::string_view id) { return api.sessions().alive(id, web::Clock::now()); });
  Server srv{&api};

  std::vector<MHD_Daemon*> daemons;
  for (const auto& a : cfg.web.listen) {
    sockaddr_storage ss{};
    bool v6 = a.host.find(':') != std::string::npos;
    if (v6) {
      auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons(a.port);
      inet_pton(AF_INET6, a.host.c_str(), &s6->sin6_addr);
    } else {
      auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
      s4->sin_family = AF_INET;
      s4->sin_port = htons(a.port);
      inet_pton(AF_INET, a.host.c_str(), &s4->sin_addr);
    }
    // A thread per connection: a live feed (text/event-stream) waits for new
    // entries in its own thread without holding up other requests.
    unsigned flags = MHD_USE_ERROR_LOG | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION;
    if (v6) flags |= MHD_USE_IPv6;
    if (tls) flags |= MHD_USE_TLS;
    MHD_Daemon* d =
        tls ? MHD_start_daemon(flags, a.port, nullptr, nullptr, &on_request, &srv, MHD_OPTION_SOCK_ADDR, &ss,
                               MHD_OPTION_HTTPS_MEM_KEY, key.c_str(), MHD_OPTION_HTTPS_MEM_CERT, cert.c_str(),
                               MHD_OPTION_NOTIFY_COMPLETED, &on_completed, nullptr, MHD_OPTION_NOTIFY_CONNECTION,
                               &on_connection, nullptr, MHD_OPTION_CONNECTION_LIMIT, 256u,
                               MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END)
            : MHD_start_daemon(flags, a.port, nullptr, nullptr, &on_request, &srv, MHD_OPTION_SOCK_ADDR, &ss,
                               MHD_OPTION_NOTIFY_COMPLETED, &on_completed, nullptr, MHD_OPTION_NOTIFY_CONNECTION,
                               &on_connection, nullptr, MHD_OPTION_CONNECTION_LIMIT, 256u,
                               MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!d) {
      fmt::print(stderr, "mxguard-web: web.listen {}: cannot start (port in use, or a bad certificate/key)\n",
                 a.to_string());
      for (MHD_Daemon* x : daemons) MHD_stop_daemon(x);
      return 1;
    }
    daemons.push_back(d);
  }
  log::info("web.started", "listen={} tls={} static_dir={}", cfg.web.listen.front().to_string(), tls ? "yes" : "no",
            log::q(opts.static_dir));

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int sig = 0;
  sigwait(&set, &sig);
  feed.stop();
  for (MHD_Daemon* d : daemons) MHD_stop_daemon(d);
  log::info("web.stopped", "signal={}", sig);
  return 0;
}
