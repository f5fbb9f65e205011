#include "common/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace respscope::common {

namespace {

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// The first error of this thread's OpenSSL queue as text, and the queue emptied.
std::string TakeErrors() {
  unsigned long first = ERR_get_error();
  if (first == 0) return {};
  char buf[256];
  ERR_error_string_n(first, buf, sizeof(buf));
  // "error:0A000086:SSL routines::certificate verify failed" -> the words after the last ':'.
  std::string text = buf;
  if (const char* reason = ERR_reason_error_string(first)) text = reason;
  ERR_clear_error();
  return text;
}

// A readable file, or a message saying why not (OpenSSL's own errors for a missing file are
// "system library" riddles).
void CheckReadable(const char* setting, const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    throw std::runtime_error(std::string("upstream_tls.") + setting + " " + Quote(path) +
                             ": cannot read (" + std::strerror(errno) + ")");
  }
}

bool IsIpAddress(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Notes the server's CertificateRequest: in TLS 1.3 a server that refuses the client's
// certificate (or its absence) says so only after the client's handshake has completed.
void OnMessage(int write_p, int, int content_type, const void* buf, size_t len, SSL*, void* arg) {
  if (write_p || content_type != SSL3_RT_HANDSHAKE || len == 0 || arg == nullptr) return;
  if (static_cast<const unsigned char*>(buf)[0] == SSL3_MT_CERTIFICATE_REQUEST) {
    static_cast<TlsHandshakeNotes*>(arg)->cert_requested = true;
  }
}

TlsFailure FromVerifyResult(long v) {
  switch (v) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
      return TlsFailure::kUnknownCa;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
    case X509_V_ERR_EMAIL_MISMATCH:
      return TlsFailure::kNameMismatch;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_CRL_HAS_EXPIRED:
      return TlsFailure::kExpired;
    default:
      return TlsFailure::kVerifyFailed;
  }
}

}  // namespace

const char* TlsFailureName(TlsFailure f) {
  switch (f) {
    case TlsFailure::kUnknownCa: return "unknown_ca";
    case TlsFailure::kNameMismatch: return "name_mismatch";
    case TlsFailure::kExpired: return "expired";
    case TlsFailure::kVerifyFailed: return "verify_failed";
    case TlsFailure::kProtocolVersion: return "protocol_version";
    case TlsFailure::kClientCertRejected: return "client_cert_rejected";
    case TlsFailure::kPeerAlert: return "peer_alert";
    case TlsFailure::kClosed: return "closed";
    case TlsFailure::kTimeout: return "timeout";
    case TlsFailure::kOther:
    case TlsFailure::kCount: break;
  }
  return "other";
}

std::string TlsError::Text() const {
  std::string s = TlsFailureName(reason);
  if (!detail.empty()) s += ": " + detail;
  return s;
}

TlsContext::TlsContext(const TlsOptions& o) : server_name_(o.server_name), verify_(o.verify) {
  ERR_clear_error();
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr) throw std::runtime_error("upstream_tls: cannot create a TLS context");
  auto fail = [&](const std::string& what) {
    std::string why = TakeErrors();
    SSL_CTX_free(ctx_);
    ctx_ = nullptr;
    throw std::runtime_error(what + (why.empty() ? "" : " (" + why + ")"));
  };
  SSL_CTX_set_min_proto_version(ctx_, o.tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
  // Partial writes: the pumps write what the socket takes and keep the rest in their backlog,
  // whose buffer may move before the retry (it is copied from the scratch buffer).
  SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                             SSL_MODE_RELEASE_BUFFERS);
  // An upstream that closes without close_notify (a Redis restart, QUIT) is an end of stream,
  // as it is in plain TCP, not an error.
  SSL_CTX_set_options(ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  if (!o.ca_file.empty()) {
    CheckReadable("ca_file", o.ca_file);
    if (SSL_CTX_load_verify_locations(ctx_, o.ca_file.c_str(), nullptr) != 1) {
      fail("upstream_tls.ca_file " + Quote(o.ca_file) + ": no usable PEM certificate");
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx_) != 1) {
    fail("upstream_tls: cannot load the system's trust store");
  }
  if (!o.cert_file.empty() || !o.key_file.empty()) {
    if (o.cert_file.empty() || o.key_file.empty()) {
      fail("upstream_tls: cert_file and key_file go together (mutual TLS needs both)");
    }
    CheckReadable("cert_file", o.cert_file);
    CheckReadable("key_file", o.key_file);
    if (SSL_CTX_use_certificate_chain_file(ctx_, o.cert_file.c_str()) != 1) {
      fail("upstream_tls.cert_file " + Quote(o.cert_file) + ": no usable PEM certificate");
    }
    if (SSL_CTX_use_PrivateKey_file(ctx_, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
        fail("upstream_tls.key_file " + Quote(o.key_file) + " does not match cert_file " +
             Quote(o.cert_file));
      }
      fail("upstream_tls.key_file " + Quote(o.key_file) + ": no usable PEM private key");
    }
    if (SSL_CTX_check_private_key(ctx_) != 1) {
      fail("upstream_tls.key_file " + Quote(o.key_file) + " does not match cert_file " +
           Quote(o.cert_file));
    }
    has_client_cert_ = true;
  }
  SSL_CTX_set_verify(ctx_, o.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  if (o.server_name.empty()) fail("upstream_tls: no server name to verify");
}

TlsContext::~TlsContext() {
  if (ctx_) SSL_CTX_free(ctx_);
}

SSL* TlsContext::NewSsl(TlsHandshakeNotes* notes) const {
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) return nullptr;
  const bool ip = IsIpAddress(server_name_);
  // SNI carries host names only (RFC 6066); Redis ignores it, proxies in front of it route by it.
  if (!ip) SSL_set_tlsext_host_name(ssl, server_name_.c_str());
  if (verify_) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name_.c_str())
                : X509_VERIFY_PARAM_set1_host(param, server_name_.c_str(), 0);
    if (ok != 1) {
      SSL_free(ssl);
      return nullptr;
    }
  }
  if (notes != nullptr) {
    SSL_set_msg_callback(ssl, OnMessage);
    SSL_set_msg_callback_arg(ssl, notes);
  }
  SSL_set_connect_state(ssl);
  return ssl;
}

void ClearTlsErrors() { ERR_clear_error(); }

TlsError ClassifyTlsError(const SSL* ssl, int ssl_error, const TlsHandshakeNotes& notes,
                          bool have_client_cert) {
  TlsError e;
  const unsigned long err = ERR_peek_error();
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK && ERR_GET_REASON(err) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    e.reason = FromVerifyResult(verify);
    e.detail = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
    ERR_clear_error();
    return e;
  }
  if (err == 0) {
    const int saved = errno;
    ERR_clear_error();
    if (ssl_error == SSL_ERROR_ZERO_RETURN || (ssl_error == SSL_ERROR_SYSCALL && saved == 0)) {
      e.reason = notes.cert_requested && !have_client_cert ? TlsFailure::kClientCertRejected
                                                           : TlsFailure::kClosed;
      e.detail = "the server closed the connection during the handshake";
    } else if (ssl_error == SSL_ERROR_SYSCALL) {
      e.reason = TlsFailure::kClosed;
      e.detail = std::strerror(saved);
    } else {
      e.detail = "SSL error " + std::to_string(ssl_error);
    }
    return e;
  }
  const int reason = ERR_GET_REASON(err);
  e.detail = TakeErrors();
  switch (reason) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
      e.reason = TlsFailure::kProtocolVersion;
      break;
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
      e.reason = TlsFailure::kProtocolVersion;
      e.detail += " (is the upstream speaking TLS on this port?)";
      break;
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      e.reason = TlsFailure::kClientCertRejected;
      break;
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
      e.reason = notes.cert_requested ? TlsFailure::kClientCertRejected : TlsFailure::kPeerAlert;
      break;
    default:
      // Every alert reason is SSL_AD_REASON_OFFSET + the alert's number.
      e.reason = reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256
                     ? TlsFailure::kPeerAlert
                     : TlsFailure::kOther;
      break;
  }
  if (e.reason == TlsFailure::kClientCertRejected && !have_client_cert) {
    e.detail += " (the server requires a client certificate: set upstream_tls.cert_file and "
                "key_file)";
  }
  return e;
}

UpstreamTls::UpstreamTls(TlsOptions options, std::string display)
    : options_(std::move(options)),
      display_(std::move(display)),
      context_(std::make_shared<const TlsContext>(options_)) {}

std::shared_ptr<const TlsContext> UpstreamTls::context() const {
  std::lock_guard lock(mu_);
  return context_;
}

std::string UpstreamTls::Reload() {
  std::shared_ptr<const TlsContext> fresh;
  try {
    fresh = std::make_shared<const TlsContext>(options_);
  } catch (const std::exception& e) {
    return e.what();
  }
  std::lock_guard lock(mu_);
  context_ = std::move(fresh);
  return {};
}

void UpstreamTls::RecordFailure(const TlsError& error, const char* who) {
  failures_[static_cast<size_t>(error.reason)].fetch_add(1, std::memory_order_relaxed);
  uint64_t suppressed = 0;
  {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    if (last_log_ != std::chrono::steady_clock::time_point{} &&
        now - last_log_ < std::chrono::seconds(5)) {
      ++suppressed_;
      return;
    }
    last_log_ = now;
    suppressed = suppressed_;
    suppressed_ = 0;
  }
  spdlog::error("upstream TLS handshake with {} failed ({}): {} (reason {}; {} similar lines "
                "suppressed)",
                display_, who, error.detail, TlsFailureName(error.reason), suppressed);
}

void UpstreamTls::NoteSilentAfterHandshake() {
  if (silent_after_handshake_.exchange(true, std::memory_order_relaxed)) return;
  spdlog::warn("upstream {} sent nothing after a TLS 1.3 handshake with a client certificate "
               "within limits.connect_timeout (no session tickets): new connections wait 250 ms "
               "for a refusal from now on; a certificate it refuses later shows as a dropped "
               "connection instead of a handshake error",
               display_);
}

}  // namespace respscope::common
