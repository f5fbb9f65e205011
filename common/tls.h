// Upstream TLS (rediss://): the OpenSSL client context shared by the data plane (proxy/net) and
// the side channel (analytics/inspector), the reasons a handshake fails, and their counters.
//
// One UpstreamTls per process, built at start-up from upstream_tls (proxy/app maps the
// configuration into TlsOptions). It holds the current SSL_CTX; every new connection takes
// context() once and keeps that shared_ptr for its life, so Reload() (SIGHUP) swapping in a
// context built from re-read files affects new connections only. A Reload() that fails keeps
// the old context.
//
// Thread: every method may be called from any thread (a mutex guards the swap; it is taken once
// per new upstream connection, never per byte). SSL objects made from a context belong to one
// connection, hence to one thread.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace respscope::common {

struct TlsOptions {
  std::string ca_file;      // empty: the system's default trust store
  std::string cert_file;    // client certificate chain (PEM) for mutual TLS, with key_file
  std::string key_file;
  std::string server_name;  // SNI (unless an IP address) and the name verified; required
  bool tls13_only = false;  // min_version 1.3 (else 1.2)
  bool verify = true;
};

// Why a handshake failed: the bounded `reason` label of
// respscope_upstream_tls_handshake_failures_total.
enum class TlsFailure : uint8_t {
  kUnknownCa,           // the chain does not lead to a trusted CA (ca_file)
  kNameMismatch,        // the certificate does not name server_name
  kExpired,             // a certificate is expired or not yet valid
  kVerifyFailed,        // any other verification error
  kProtocolVersion,     // no common protocol version (min_version), or not TLS at all
  kClientCertRejected,  // the server wants a client certificate, or refused ours
  kPeerAlert,           // another alert from the server
  kClosed,              // the server closed during the handshake
  kTimeout,             // limits.connect_timeout ran out during the handshake
  kOther,
  kCount,
};
const char* TlsFailureName(TlsFailure f);

struct TlsError {
  TlsFailure reason = TlsFailure::kOther;
  std::string detail;  // OpenSSL's words, e.g. "unable to get local issuer certificate"
  // "unknown_ca: certificate verify failed (unable to get local issuer certificate)"
  std::string Text() const;
};

// What a connection records while it handshakes (SSL_set_msg_callback_arg).
struct TlsHandshakeNotes {
  bool cert_requested = false;  // the server sent a CertificateRequest
};

// An immutable SSL_CTX.
class TlsContext {
 public:
  // Reads the files and builds the context. Throws std::runtime_error with a message naming the
  // setting and the file: "upstream_tls.ca_file '/x.pem': cannot read (No such file or
  // directory)", "upstream_tls.key_file '/k.pem' does not match cert_file '/c.pem'", ...
  explicit TlsContext(const TlsOptions& options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // A client SSL for one connection: SNI, the name to verify, `notes` filled during the
  // handshake (it must outlive the handshake). nullptr when OpenSSL cannot allocate.
  SSL* NewSsl(TlsHandshakeNotes* notes) const;
  bool has_client_cert() const { return has_client_cert_; }

 private:
  SSL_CTX* ctx_ = nullptr;
  std::string server_name_;
  bool verify_ = true;
  bool has_client_cert_ = false;
};

// The failure of the last SSL_connect / SSL_read / SSL_peek on `ssl` whose SSL_get_error() was
// `ssl_error`, classified; drains OpenSSL's error queue of this thread.
TlsError ClassifyTlsError(const SSL* ssl, int ssl_error, const TlsHandshakeNotes& notes,
                          bool have_client_cert);
// Clears this thread's OpenSSL error queue (before an SSL_* call whose errors are read after).
void ClearTlsErrors();

class UpstreamTls {
 public:
  // Builds the first context; throws as TlsContext does.
  UpstreamTls(TlsOptions options, std::string display);

  std::shared_ptr<const TlsContext> context() const;
  // Re-reads the files (SIGHUP). Returns "" on success; else the error, and the old context
  // stays in use.
  std::string Reload();

  const TlsOptions& options() const { return options_; }
  // Counts a failed handshake and logs it (at most one line per 5 s, with the number of lines
  // suppressed); `who` says which connection ("data plane", "side channel").
  void RecordFailure(const TlsError& error, const char* who);
  uint64_t failures(TlsFailure f) const {
    return failures_[static_cast<size_t>(f)].load(std::memory_order_relaxed);
  }

  // TLS 1.3 with a client certificate: whether the server was seen to send nothing after an
  // accepted handshake (no session tickets) within limits.connect_timeout. Until then the data
  // plane waits for the server's verdict (tickets or an alert) as long as the connect timeout
  // allows; from then on only briefly. Logged once.
  bool silent_after_handshake() const {
    return silent_after_handshake_.load(std::memory_order_relaxed);
  }
  void NoteSilentAfterHandshake();

 private:
  TlsOptions options_;
  std::string display_;  // the upstream, for messages (no credentials)
  mutable std::mutex mu_;
  std::shared_ptr<const TlsContext> context_;
  std::chrono::steady_clock::time_point last_log_{};
  uint64_t suppressed_ = 0;
  std::atomic<uint64_t> failures_[static_cast<size_t>(TlsFailure::kCount)] = {};
  std::atomic<bool> silent_after_handshake_{false};
};

}  // namespace respscope::common
