// c_api_test.cc: the C ABI's argument checks (NULLs are errors, never crashes) and a round trip
// against a real in-process gRPC server.
#include "shaken/shaken_client.h"

#include <string.h>

#include <string>

#include "client/fake_shaken_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace {

using ::shaken::client::testing::FakeShakenServer;
using ::testing::HasSubstr;
using ::testing::StrEq;

bool IsZero(const void* p, size_t n) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) {
    if (b[i] != 0) return false;
  }
  return true;
}

TEST(CApiTest, NewRejectsNullsAndBadOptions) {
  shaken_error err;
  shaken_client* c = reinterpret_cast<shaken_client*>(0x1);
  EXPECT_EQ(shaken_client_new(nullptr, &c, &err), 3);
  EXPECT_EQ(c, nullptr);
  EXPECT_EQ(err.code, 3);
  EXPECT_THAT(err.message, HasSubstr("opts is NULL"));

  shaken_client_options o;
  shaken_client_options_init(&o);
  EXPECT_EQ(shaken_client_new(&o, nullptr, &err), 3);
  EXPECT_THAT(err.message, HasSubstr("out is NULL"));

  EXPECT_EQ(shaken_client_new(&o, &c, &err), 3);  // no target
  EXPECT_EQ(c, nullptr);
  EXPECT_THAT(err.message, HasSubstr("target is empty"));
  EXPECT_EQ(shaken_client_new(&o, &c, nullptr), 3);  // err may be NULL

  o.target = "127.0.0.1:1";
  o.client_cert_file = "/etc/client.pem";
  EXPECT_EQ(shaken_client_new(&o, &c, &err), 3);
  EXPECT_THAT(err.message, HasSubstr("client_cert_file is set without client_key_file"));

  o.client_cert_file = nullptr;
  o.root_ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(shaken_client_new(&o, &c, &err), 3);
  EXPECT_THAT(err.message, HasSubstr("/nonexistent/ca.pem"));

  o.root_ca_file = nullptr;
  o.max_attempts = 9;
  EXPECT_EQ(shaken_client_new(&o, &c, &err), 3);
  EXPECT_THAT(err.message, HasSubstr("max_attempts"));
}

TEST(CApiTest, LongMessagesAreTruncatedAndTerminated) {
  std::string path = "/nonexistent/" + std::string(1000, 'x');
  shaken_client_options o;
  shaken_client_options_init(&o);
  o.target = "127.0.0.1:1";
  o.root_ca_file = path.c_str();
  shaken_client* c = nullptr;
  shaken_error err;
  EXPECT_EQ(shaken_client_new(&o, &c, &err), 3);
  EXPECT_EQ(strlen(err.message), sizeof err.message - 1);
}

TEST(CApiTest, CallsRejectNulls) {
  shaken_client_options o;
  shaken_client_options_init(&o);
  o.target = "127.0.0.1:1";
  o.insecure_plaintext = 1;
  shaken_client* c = nullptr;
  shaken_error err;
  ASSERT_EQ(shaken_client_new(&o, &c, &err), 0) << err.message;
  EXPECT_EQ(err.code, 0);
  EXPECT_THAT(err.message, StrEq(""));

  const char* dests[] = {"12155551213", nullptr};
  shaken_sign_request req;
  memset(&req, 0, sizeof req);
  req.attest = "A";
  req.orig_tn = "12155551212";
  req.dest_tns = dests;
  req.num_dest_tns = 1;
  shaken_sign_result res;
  memset(&res, 0xAB, sizeof res);

  EXPECT_EQ(shaken_sign(nullptr, &req, &res, &err), 3);
  EXPECT_THAT(err.message, HasSubstr("client is NULL"));
  EXPECT_TRUE(IsZero(&res, sizeof res)) << "a failed call zeroes its result";
  EXPECT_EQ(shaken_sign(c, nullptr, &res, &err), 3);
  EXPECT_EQ(shaken_sign(c, &req, nullptr, &err), 3);
  EXPECT_THAT(err.message, HasSubstr("result is NULL"));
  req.attest = nullptr;
  EXPECT_EQ(shaken_sign(c, &req, &res, &err), 3);
  EXPECT_THAT(err.message, HasSubstr("attest is NULL"));
  req.attest = "A";
  req.num_dest_tns = 2;
  EXPECT_EQ(shaken_sign(c, &req, &res, nullptr), 3);
  EXPECT_EQ(shaken_sign(c, &req, &res, &err), 3);
  EXPECT_THAT(err.message, HasSubstr("dest_tns[1] is NULL"));
  req.dest_tns = nullptr;
  EXPECT_EQ(shaken_sign(c, &req, &res, &err), 3);
  EXPECT_THAT(err.message, HasSubstr("dest_tns is NULL but its count is 2"));

  shaken_verify_request vreq;
  memset(&vreq, 0, sizeof vreq);
  shaken_verify_result vres;
  EXPECT_EQ(shaken_verify(nullptr, &vreq, &vres, &err), 3);
  EXPECT_EQ(shaken_verify(c, nullptr, &vres, &err), 3);
  EXPECT_EQ(shaken_verify(c, &vreq, nullptr, &err), 3);
  EXPECT_EQ(shaken_verify(c, &vreq, &vres, &err), 3);
  EXPECT_THAT(err.message, HasSubstr("from_tn is NULL"));
  vreq.from_tn = "12155551212";
  vreq.num_identities = 1;
  EXPECT_EQ(shaken_verify(c, &vreq, &vres, &err), 3);
  EXPECT_THAT(err.message, HasSubstr("identities is NULL"));
  EXPECT_TRUE(IsZero(&vres, sizeof vres));

  // Free functions accept NULL and zeroed results, twice.
  shaken_sign_result_free(nullptr);
  shaken_sign_result_free(&res);
  shaken_sign_result_free(&res);
  shaken_verify_result_free(nullptr);
  shaken_verify_result_free(&vres);
  shaken_client_free(nullptr);
  shaken_client_options_init(nullptr);
  shaken_client_free(c);
}

TEST(CApiTest, CodeNames) {
  EXPECT_THAT(shaken_code_name(0), StrEq("OK"));
  EXPECT_THAT(shaken_code_name(3), StrEq("INVALID_ARGUMENT"));
  EXPECT_THAT(shaken_code_name(14), StrEq("UNAVAILABLE"));
  EXPECT_THAT(shaken_code_name(16), StrEq("UNAUTHENTICATED"));
  EXPECT_THAT(shaken_code_name(-1), StrEq("UNKNOWN_CODE"));
  EXPECT_THAT(shaken_code_name(17), StrEq("UNKNOWN_CODE"));
}

TEST(CApiTest, SignThenVerifyRoundTrip) {
  ASSERT_OK_AND_ASSIGN(auto server, FakeShakenServer::Start());
  std::string target = server->target();
  shaken_client_options o;
  shaken_client_options_init(&o);
  o.target = target.c_str();
  o.insecure_plaintext = 1;
  o.default_timeout_ms = 2000;
  shaken_client* c = nullptr;
  shaken_error err;
  ASSERT_EQ(shaken_client_new(&o, &c, &err), 0) << err.message;

  const char* dests[] = {"12155551213", "12155551214"};
  shaken_sign_request req;
  memset(&req, 0, sizeof req);
  req.attest = "B";
  req.orig_tn = "12155551212";
  req.dest_tns = dests;
  req.num_dest_tns = 2;
  req.has_iat = 1;
  req.iat = 1700000456;
  req.request_id = "c-1";
  shaken_sign_result res;
  ASSERT_EQ(shaken_sign(c, &req, &res, &err), 0) << err.message;
  EXPECT_THAT(res.identity,
              StrEq("jws.12155551212;info=<https://cert.example/x5u.pem>;alg=ES256;ppt=shaken"));
  EXPECT_THAT(res.passport, StrEq("jws.12155551212"));
  EXPECT_THAT(res.origid, StrEq("fake-origid"));
  EXPECT_EQ(res.iat, 1700000456);
  EXPECT_THAT(res.profile, StrEq("default"));
  EXPECT_THAT(res.request_id, StrEq("c-1"));

  const char* identities[] = {"bogus", res.identity};
  shaken_verify_request vreq;
  memset(&vreq, 0, sizeof vreq);
  vreq.identities = identities;
  vreq.num_identities = 2;
  vreq.from_tn = "12155551212";
  vreq.to_tns = dests;
  vreq.num_to_tns = 1;
  shaken_verify_result vres;
  ASSERT_EQ(shaken_verify(c, &vreq, &vres, &err), 0) << err.message;
  EXPECT_EQ(vres.overall.passed, 1);
  EXPECT_THAT(vres.overall.verstat, StrEq("TN-Validation-Passed"));
  EXPECT_EQ(vres.overall.sip_code, 0);
  EXPECT_THAT(vres.overall.sip_reason, StrEq(""));
  EXPECT_THAT(vres.overall.orig_tn, StrEq("12155551212"));
  EXPECT_THAT(vres.overall.cert_spc, StrEq("709J"));
  EXPECT_EQ(vres.overall.cert_not_after, 1800000000);
  ASSERT_EQ(vres.num_identities, 2u);
  EXPECT_EQ(vres.identities[0].passed, 0);
  EXPECT_EQ(vres.identities[0].sip_code, 438);
  EXPECT_THAT(vres.identities[0].sip_reason, StrEq("Invalid Identity Header"));
  EXPECT_THAT(vres.identities[0].reason, StrEq("signature_invalid"));
  EXPECT_EQ(vres.identities[1].passed, 1);
  shaken_verify_result_free(&vres);
  EXPECT_TRUE(IsZero(&vres, sizeof vres));
  shaken_sign_result_free(&res);
  EXPECT_TRUE(IsZero(&res, sizeof res));

  // A request the server finds malformed: its code and message, and a zeroed result.
  req.attest = "D";
  EXPECT_EQ(shaken_sign(c, &req, &res, &err), 3);
  EXPECT_EQ(err.code, 3);
  EXPECT_THAT(err.message, StrEq("attest must be A, B or C"));
  EXPECT_TRUE(IsZero(&res, sizeof res));

  // Per-call timeout.
  req.attest = "A";
  req.profile = "slow";
  req.timeout_ms = 100;
  EXPECT_EQ(shaken_sign(c, &req, &res, &err), 4);
  EXPECT_THAT(shaken_code_name(err.code), StrEq("DEADLINE_EXCEEDED"));

  shaken_client_free(c);
}

}  // namespace
