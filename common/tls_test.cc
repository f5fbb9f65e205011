// TlsContext and ClassifyTlsError without sockets: certificates are made in memory, written to a
// temporary directory for TlsContext to read, and the handshake runs over a BIO pair against an
// OpenSSL server in the same thread.
#include "common/tls.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>

namespace respscope::common {
namespace {

struct KeyCert {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  ~KeyCert() {
    EVP_PKEY_free(key);
    X509_free(cert);
  }
};

void AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ext, nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `cn`, signed by `ca` (nullptr: self-signed CA), valid from `from_days` to
// `to_days` around now.
void Make(KeyCert* out, const char* cn, const KeyCert* ca, const char* san, long from_days = -1,
          long to_days = 2) {
  out->key = EVP_EC_gen("P-256");
  ASSERT_NE(out->key, nullptr);
  out->cert = X509_new();
  X509_set_version(out->cert, 2);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(out->cert), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(out->cert), from_days * 86400);
  X509_gmtime_adj(X509_getm_notAfter(out->cert), to_days * 86400);
  X509_set_pubkey(out->cert, out->key);
  X509_NAME* name = X509_get_subject_name(out->cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509* issuer = ca ? ca->cert : out->cert;
  X509_set_issuer_name(out->cert, X509_get_subject_name(issuer));
  if (ca == nullptr) {
    AddExt(out->cert, issuer, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(out->cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExt(out->cert, issuer, NID_basic_constraints, "CA:FALSE");
    AddExt(out->cert, issuer, NID_ext_key_usage, "serverAuth");
    if (san) AddExt(out->cert, issuer, NID_subject_alt_name, san);
  }
  ASSERT_GT(X509_sign(out->cert, ca ? ca->key : out->key, EVP_sha256()), 0);
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/respscope-tls-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Make(&ca_, "test-ca", nullptr, nullptr);
    Make(&other_ca_, "other-ca", nullptr, nullptr);
    Make(&server_, "server", &ca_, "DNS:localhost,IP:127.0.0.1");
    Make(&expired_, "expired", &ca_, "DNS:localhost", -3, -1);
    ca_file_ = WriteCert("ca.pem", ca_.cert);
    other_ca_file_ = WriteCert("other.pem", other_ca_.cert);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteCert(const char* name, X509* cert) {
    std::string path = dir_ + "/" + name;
    FILE* f = std::fopen(path.c_str(), "w");
    EXPECT_NE(f, nullptr);
    PEM_write_X509(f, cert);
    std::fclose(f);
    return path;
  }

  // Runs a handshake of a client from `options` against a server presenting `server`.
  // Returns the classified failure, or nullopt when it succeeded.
  std::optional<TlsError> Handshake(const TlsOptions& options, const KeyCert& server) {
    TlsContext client_ctx(options);
    SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
    EXPECT_EQ(SSL_CTX_use_certificate(sctx, server.cert), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey(sctx, server.key), 1);
    SSL* s = SSL_new(sctx);
    TlsHandshakeNotes notes;
    SSL* c = client_ctx.NewSsl(&notes);
    EXPECT_NE(c, nullptr);
    BIO *cb = nullptr, *sb = nullptr;
    BIO_new_bio_pair(&cb, 0, &sb, 0);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_accept_state(s);
    std::optional<TlsError> result;
    bool client_done = false;
    for (int i = 0; i < 20 && !client_done; ++i) {
      ClearTlsErrors();
      int r = SSL_do_handshake(c);
      if (r == 1) {
        client_done = true;
        break;
      }
      int e = SSL_get_error(c, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        result = ClassifyTlsError(c, e, notes, client_ctx.has_client_cert());
        break;
      }
      SSL_do_handshake(s);
      ERR_clear_error();  // the server's errors are not the client's
    }
    if (!client_done && !result) result = TlsError{TlsFailure::kTimeout, "no progress"};
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(sctx);
    return result;
  }

  TlsOptions Options(const std::string& ca_file, const std::string& name = "localhost") {
    TlsOptions o;
    o.ca_file = ca_file;
    o.server_name = name;
    return o;
  }

  std::string dir_;
  KeyCert ca_, other_ca_, server_, expired_;
  std::string ca_file_, other_ca_file_;
};

TEST_F(TlsTest, VerifiedHandshakeSucceedsByNameAndByAddress) {
  EXPECT_FALSE(Handshake(Options(ca_file_), server_).has_value());
  EXPECT_FALSE(Handshake(Options(ca_file_, "127.0.0.1"), server_).has_value());
}

TEST_F(TlsTest, UnknownCa) {
  auto e = Handshake(Options(other_ca_file_), server_);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->reason, TlsFailure::kUnknownCa) << e->Text();
  EXPECT_NE(e->detail.find("certificate verify failed"), std::string::npos) << e->detail;
}

TEST_F(TlsTest, NameMismatchForAHostAndForAnAddress) {
  auto e = Handshake(Options(ca_file_, "redis.internal"), server_);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->reason, TlsFailure::kNameMismatch) << e->Text();
  e = Handshake(Options(ca_file_, "127.0.0.2"), server_);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->reason, TlsFailure::kNameMismatch) << e->Text();
}

TEST_F(TlsTest, Expired) {
  auto e = Handshake(Options(ca_file_), expired_);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->reason, TlsFailure::kExpired) << e->Text();
}

TEST_F(TlsTest, VerifyFalseAcceptsAnyCertificate) {
  TlsOptions o = Options(other_ca_file_, "redis.internal");
  o.verify = false;
  EXPECT_FALSE(Handshake(o, expired_).has_value());
}

TEST_F(TlsTest, FileErrorsNameTheSettingAndTheFile) {
  try {
    TlsContext ctx(Options(dir_ + "/missing.pem"));
    FAIL() << "no error for a missing ca_file";
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("upstream_tls.ca_file"), std::string::npos) << what;
    EXPECT_NE(what.find("missing.pem"), std::string::npos) << what;
  }
  std::string junk = dir_ + "/junk.pem";
  FILE* f = std::fopen(junk.c_str(), "w");
  std::fputs("not a certificate\n", f);
  std::fclose(f);
  EXPECT_THROW(TlsContext ctx(Options(junk)), std::runtime_error);
}

TEST(TlsFailureNameTest, EveryReasonHasItsOwnLabel) {
  std::set<std::string> names;
  for (int i = 0; i < static_cast<int>(TlsFailure::kCount); ++i) {
    names.insert(TlsFailureName(static_cast<TlsFailure>(i)));
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(TlsFailure::kCount));
  EXPECT_EQ(TlsError({TlsFailure::kExpired, "x"}).Text(), "expired: x");
}

}  // namespace
}  // namespace respscope::common
