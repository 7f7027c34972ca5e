// Integration tests of shakend at the wire level: raw gRPC (reflection, undecodable requests), the
// Prometheus metrics and what the dashboards and alerts query, audit failures. Reload and start-up
// checks are in daemon_reload_test.cc.
#include <curl/curl.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <future>
#include <regex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/profiles.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "shaken/client.h"
#include "shaken/shaken_client.h"
#include "shaken/v1/shaken.grpc.pb.h"
#include "stir/memory_signer.h"
#include "stir/openssl_util.h"
#include "stir/passport.h"
#include "stir/status_macros.h"
#include "tests/daemon_fixture.h"
#include "tests/daemon_test_base.h"
#include "tests/testing/source_path.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "yaml-cpp/yaml.h"

namespace shaken::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// ApiChannel is a raw gRPC channel to the API listener with `name`'s client certificate.
std::shared_ptr<grpc::Channel> ApiChannel(const DaemonEnv& env, const std::string& name) {
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = ReadFileOrEmpty(env.TlsCaFile());
  tls.pem_cert_chain = ReadFileOrEmpty(env.ClientCertFile(name));
  tls.pem_private_key = ReadFileOrEmpty(env.ClientKeyFile(name));
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  return grpc::CreateCustomChannel(env.ApiTarget(), grpc::SslCredentials(tls), args);
}

grpc::ByteBuffer Bytes(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string BytesOf(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return "";
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes;
}

// Reflect makes one grpc.reflection.v1alpha call over `channel`: a ServerReflectionRequest whose
// only field is the string `value` at field number `field` (7 list_services, 4
// file_containing_symbol), encoded by hand (the reflection proto is not installed). Returns the
// response's bytes.
absl::StatusOr<std::string> Reflect(const std::shared_ptr<grpc::Channel>& channel, int field,
                                    const std::string& value) {
  std::string request;
  request.push_back(static_cast<char>(field << 3 | 2));  // length-delimited
  request.push_back(static_cast<char>(value.size()));    // < 128
  request.append(value);
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  auto call =
      stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  auto step = [&](intptr_t want) {
    void* tag = nullptr;
    bool ok = false;
    return cq.Next(&tag, &ok) && ok && reinterpret_cast<intptr_t>(tag) == want;
  };
  grpc::Slice slice(request);
  grpc::ByteBuffer out(&slice, 1), in;
  grpc::Status status;
  call->StartCall(reinterpret_cast<void*>(1));
  bool ok = step(1);
  if (ok) {
    call->Write(out, reinterpret_cast<void*>(2));
    ok = step(2);
  }
  if (ok) {
    call->Read(&in, reinterpret_cast<void*>(3));
    ok = step(3);
  }
  call->WritesDone(reinterpret_cast<void*>(4));
  step(4);
  call->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  if (!ok) return absl::InternalError("reflection stream failed");
  std::vector<grpc::Slice> slices;
  if (!in.Dump(&slices).ok()) return absl::InternalError("unreadable response");
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes;
}

// Fields returns the length-delimited values of field `number` in the protobuf message `bytes`.
std::vector<std::string> Fields(const std::string& bytes, int number) {
  google::protobuf::UnknownFieldSet set;
  std::vector<std::string> out;
  if (!set.ParseFromString(bytes)) return out;
  for (int i = 0; i < set.field_count(); ++i) {
    const google::protobuf::UnknownField& f = set.field(i);
    if (f.number() == number && f.type() == google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) {
      out.push_back(f.length_delimited());
    }
  }
  return out;
}

// Server reflection (grpcurl, Postman) lists and describes shaken.v1 on the mTLS API listener
// (listen.reflection: api, the default); the plaintext health listener does not offer it.
TEST_F(DaemonTest, ReflectionListsAndDescribesTheApi) {
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = ReadFileOrEmpty(env_->TlsCaFile());
  tls.pem_cert_chain = ReadFileOrEmpty(env_->ClientCertFile("sbc1.test"));
  tls.pem_private_key = ReadFileOrEmpty(env_->ClientKeyFile("sbc1.test"));
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto api = grpc::CreateCustomChannel(env_->ApiTarget(), grpc::SslCredentials(tls), args);

  ASSERT_OK_AND_ASSIGN(std::string listed, Reflect(api, 7, "*"));
  std::vector<std::string> names;
  for (const std::string& list : Fields(listed, 6)) {       // list_services_response
    for (const std::string& service : Fields(list, 1)) {    // service
      for (const std::string& name : Fields(service, 1)) names.push_back(name);
    }
  }
  EXPECT_THAT(names, ::testing::IsSupersetOf({"shaken.v1.Shaken", "grpc.health.v1.Health"}));

  ASSERT_OK_AND_ASSIGN(std::string described, Reflect(api, 4, "shaken.v1.Shaken"));
  bool found = false;
  for (const std::string& files : Fields(described, 4)) {  // file_descriptor_response
    for (const std::string& file : Fields(files, 1)) {     // file_descriptor_proto
      google::protobuf::FileDescriptorProto proto;
      ASSERT_TRUE(proto.ParseFromString(file));
      if (proto.package() != "shaken.v1" || proto.service_size() != 1) continue;
      std::vector<std::string> methods;
      for (const auto& m : proto.service(0).method()) methods.push_back(m.name());
      EXPECT_THAT(methods, ::testing::UnorderedElementsAre("Sign", "SignStream", "Verify",
                                                           "ListProfiles"));
      found = true;
    }
  }
  EXPECT_TRUE(found) << "no descriptor of shaken.v1.Shaken in the reflection answer";

  auto health = grpc::CreateChannel(absl::StrCat("127.0.0.1:", env_->daemon().health_port()),
                                    grpc::InsecureChannelCredentials());
  EXPECT_THAT(Reflect(health, 7, "*"), StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(HealthStatus(absl::StrCat("127.0.0.1:", env_->daemon().health_port()), ""),
              IsOkAndHolds(1));
}

// listen.reflection: off serves reflection on no listener.
TEST(DaemonReflectionTest, ReflectionOffIsServedNowhere) {
  ASSERT_OK_AND_ASSIGN(auto env, DaemonEnv::Create({.listen_extra_yaml = "  reflection: off\n"}));
  EXPECT_THAT(Reflect(ApiChannel(*env, "sbc1.test"), 7, "*"),
              StatusIs(absl::StatusCode::kUnimplemented));
  auto health = grpc::CreateChannel(absl::StrCat("127.0.0.1:", env->daemon().health_port()),
                                    grpc::InsecureChannelCredentials());
  EXPECT_THAT(Reflect(health, 7, "*"), StatusIs(absl::StatusCode::kUnimplemented));
  // The API itself is unaffected.
  ASSERT_OK_AND_ASSIGN(auto c, env->NewClient("sbc1.test"));
  EXPECT_OK(c->ListProfiles());
}

// Field 1 (length-delimited) announces 5 bytes and carries 2: no protobuf message decodes it.
const std::string kUndecodable("\x0a\x05" "ab", 4);

// A request whose bytes are not its message is INVALID_ARGUMENT saying so (gRPC's typed callback
// handlers would answer UNIMPLEMENTED with an empty message).
TEST_F(DaemonTest, UndecodableUnaryRequestsAreInvalidArgument) {
  grpc::GenericStub stub(ApiChannel(*env_, "sbc1.test"));
  for (const char* method : {"Sign", "Verify", "ListProfiles"}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::ByteBuffer request = Bytes(kUndecodable), response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, absl::StrCat("/shaken.v1.Shaken/", method), grpc::StubOptions(),
                   &request, &response, [&done](grpc::Status s) { done.set_value(std::move(s)); });
    grpc::Status status = done.get_future().get();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method;
    EXPECT_THAT(status.error_message(), HasSubstr("is not a valid shaken.v1.")) << method;
  }
}

// SignStream [good, undecodable, good]: three answers in order, the middle one an error, and the
// stream ends OK; nothing is dropped.
TEST_F(DaemonTest, SignStreamAnswersAnUndecodableRequestAndGoesOn) {
  grpc::GenericStub stub(ApiChannel(*env_, "sbc1.test"));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&ctx, "/shaken.v1.Shaken/SignStream", &cq);
  auto step = [&](intptr_t want) {
    void* tag = nullptr;
    bool ok = false;
    return cq.Next(&tag, &ok) && ok && reinterpret_cast<intptr_t>(tag) == want;
  };
  auto good = [](const std::string& id) {
    shaken::v1::SignRequest r;
    r.set_attest("A");
    r.mutable_orig()->set_tn(kOrig);
    r.mutable_dest()->add_tn(kDest);
    r.set_request_id(id);
    return r.SerializeAsString();
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(step(1));
  intptr_t tag = 10;
  for (const std::string& bytes : {good("first"), kUndecodable, good("third")}) {
    call->Write(Bytes(bytes), reinterpret_cast<void*>(tag));
    ASSERT_TRUE(step(tag++));
  }
  call->WritesDone(reinterpret_cast<void*>(2));
  ASSERT_TRUE(step(2));
  std::vector<shaken::v1::SignStreamResponse> answers;
  for (;;) {
    grpc::ByteBuffer in;
    call->Read(&in, reinterpret_cast<void*>(tag));
    if (!step(tag++)) break;
    shaken::v1::SignStreamResponse r;
    ASSERT_TRUE(r.ParseFromString(BytesOf(in)));
    answers.push_back(std::move(r));
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(3));
  ASSERT_TRUE(step(3));
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_EQ(answers[0].request_id(), "first");
  EXPECT_TRUE(answers[0].has_response());
  EXPECT_EQ(answers[1].request_id(), "");
  EXPECT_EQ(answers[1].error().code(), 3);  // INVALID_ARGUMENT
  EXPECT_THAT(answers[1].error().message(), HasSubstr("not a valid shaken.v1.SignRequest"));
  EXPECT_EQ(answers[2].request_id(), "third");
  EXPECT_TRUE(answers[2].has_response());
  cq.Shutdown();
  void* t = nullptr;
  bool ok = false;
  while (cq.Next(&t, &ok)) {
  }
}

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string Scrape(int port) {
  CURL* curl = curl_easy_init();
  std::string body;
  std::string url = absl::StrCat("http://127.0.0.1:", port, "/metrics");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 5L);
  EXPECT_EQ(curl_easy_perform(curl), CURLE_OK);
  curl_easy_cleanup(curl);
  return body;
}

// Value reads one series' value from a Prometheus text exposition; -1 when absent.
double Value(const std::string& body, const std::string& series) {
  size_t at = body.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(at + series.size() + 2));
}

// ExpectExportedSeries checks that every shaken_* series `expr` names is in the exposition
// `body`, and every label value it matches (=, =~ alternatives) is used by some series.
void ExpectExportedSeries(const std::string& body, const std::string& expr,
                          const std::string& where) {
  const std::regex metric(R"(\bshaken_[a-z0-9_]+)");
  const std::regex matcher(R"re(\b([a-z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)")re");
  for (std::sregex_iterator it(expr.begin(), expr.end(), metric), end; it != end; ++it) {
    const std::string series = it->str();
    EXPECT_TRUE(absl::StrContains(body, "\n" + series + "{") ||
                absl::StrContains(body, "\n" + series + " "))
        << where << ": " << series << " is not exported";
  }
  for (std::sregex_iterator it(expr.begin(), expr.end(), matcher), end; it != end; ++it) {
    const std::string label = (*it)[1], values = (*it)[3];
    if (label == "job" || label == "instance") continue;  // Prometheus' own target labels
    for (absl::string_view value : absl::StrSplit(values, '|')) {
      EXPECT_TRUE(absl::StrContains(body, absl::StrCat(label, "=\"", value, "\"")))
          << where << ": no series has " << label << "=\"" << value << "\"";
    }
  }
}

// Every panel of the Grafana dashboard in deploy/grafana queries series this daemon exports.
TEST_F(DaemonTest, DashboardPanelsQueryExportedSeries) {
  const std::string body = Scrape(env_->daemon().metrics_port());
  std::ifstream in(SourcePath("deploy/grafana/shakend.json"));
  const nlohmann::json dashboard = nlohmann::json::parse(in);
  int targets = 0;
  for (const nlohmann::json& panel : dashboard.at("panels")) {
    const std::string title = panel.at("title");
    EXPECT_FALSE(panel.at("targets").empty()) << title;
    for (const nlohmann::json& target : panel.at("targets")) {
      ExpectExportedSeries(body, target.at("expr"), title);
      ++targets;
    }
  }
  for (const nlohmann::json& var : dashboard.at("templating").at("list")) {
    if (var.contains("query") && var.at("query").is_string()) {
      ExpectExportedSeries(body, var.at("query"), "variable " + var.at("name").get<std::string>());
    }
  }
  EXPECT_GE(targets, 20);
}

// The alerting rules shipped in deploy/prometheus name only series this daemon exports, with
// label values it uses: a renamed metric cannot silently disarm an alert.
TEST_F(DaemonTest, AlertRulesNameExportedSeriesAndLabelValues) {
  const std::string body = Scrape(env_->daemon().metrics_port());
  YAML::Node rules = YAML::LoadFile(SourcePath("deploy/prometheus/shakend-alerts.yaml"));
  ASSERT_TRUE(rules["groups"].IsSequence());
  const std::regex metric(R"(\bshaken_[a-z0-9_]+)");
  const std::regex matcher(R"re(\b([a-z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)")re");
  int alerts = 0;
  for (const YAML::Node& group : rules["groups"]) {
    for (const YAML::Node& rule : group["rules"]) {
      const std::string name = rule["alert"].as<std::string>();
      const std::string expr = rule["expr"].as<std::string>();
      ++alerts;
      EXPECT_THAT(rule["labels"]["severity"].as<std::string>(),
                  ::testing::AnyOf("warning", "critical"))
          << name;
      EXPECT_FALSE(rule["annotations"]["summary"].as<std::string>().empty()) << name;
      for (std::sregex_iterator it(expr.begin(), expr.end(), metric), end; it != end; ++it) {
        const std::string series = it->str();
        EXPECT_TRUE(absl::StrContains(body, "\n" + series + "{") ||
                    absl::StrContains(body, "\n" + series + " "))
            << name << ": " << series << " is not exported";
      }
      for (std::sregex_iterator it(expr.begin(), expr.end(), matcher), end; it != end; ++it) {
        const std::string label = (*it)[1], values = (*it)[3];
        if (label == "job") continue;  // Prometheus' own target label
        for (absl::string_view value : absl::StrSplit(values, '|')) {
          EXPECT_TRUE(absl::StrContains(body, absl::StrCat(label, "=\"", value, "\"")))
              << name << ": no series has " << label << "=\"" << value << "\"";
        }
      }
    }
  }
  EXPECT_GE(alerts, 8);
}

TEST_F(DaemonTest, PrometheusMetrics) {
  const int port = env_->daemon().metrics_port();
  const std::string sign_ok = "shaken_rpc_requests_total{code=\"OK\",method=\"Sign\"}";
  const std::string passed = "shaken_verify_verdicts_total{reason=\"passed\"}";
  const std::string before = Scrape(port);
  auto c = Client();
  ASSERT_OK_AND_ASSIGN(client::SignResult s, c->Sign(Call("file", "C")));
  ASSERT_OK(c->Verify({.identities = {s.identity}, .from_tn = kOrig, .to_tns = {kDest}}).status());
  const std::string body = Scrape(port);
  EXPECT_EQ(Value(body, sign_ok) - Value(before, sign_ok), 1);
  EXPECT_EQ(Value(body, passed) - Value(before, passed), 1);
  EXPECT_THAT(body, HasSubstr("shaken_sign_duration_seconds_bucket{profile=\"file\""));
  EXPECT_EQ(Value(body, "shaken_hsm_sessions{profile=\"token\",state=\"size\"}"), 2);
  EXPECT_GT(Value(body, "shaken_certificate_not_after_seconds{profile=\"file\"}"),
            absl::ToUnixSeconds(absl::Now()));
  EXPECT_GE(Value(body, "shaken_x5u_fetch_duration_seconds_count{result=\"ok\"}"), 1);
  EXPECT_GE(Value(body, "shaken_x5u_cache_hits_total") + Value(body, "shaken_x5u_cache_misses_total"),
            1);
  EXPECT_THAT(body, Not(HasSubstr("12155550121")));  // never a TN in a label
}

// Every shaken_ family a live daemon exports (its collectors included) is declared in the metric
// table (daemon/metrics.cc) with the type a scrape shows. (exposer_* are prometheus-cpp's own.)
TEST_F(DaemonTest, EveryScrapedSeriesIsDeclared) {
  auto c = Client();
  ASSERT_OK(c->Sign(Call("file", "C")).status());
  const std::string body = Scrape(env_->daemon().metrics_port());
  int families = 0;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (!absl::StartsWith(line, "# TYPE ")) continue;
    std::vector<std::string> words = absl::StrSplit(line, ' ');
    ASSERT_EQ(words.size(), 4u) << line;
    if (!absl::StartsWith(words[2], "shaken_")) continue;
    const daemon::MetricSpec* spec = daemon::FindMetric(words[2]);
    ASSERT_NE(spec, nullptr) << words[2] << " is exported but not declared in MetricTable()";
    EXPECT_EQ(words[3], daemon::MetricTypeName(spec->type)) << words[2];
    ++families;
  }
  EXPECT_GE(families, 20);
}

TEST_F(DaemonTest, SigningIsRefusedWhileAuditCannotBeWritten) {
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no writable /dev/full here";
  auto c = Client();
  ASSERT_OK(daemon::InitLogging(daemon::LogFormat::kText, daemon::LogLevel::kInfo, "/dev/full"));
  const uint64_t before = daemon::AuditWriteFailures();
  EXPECT_OK(c->Sign(Call()));  // its record is lost: audit is now known to fail
  EXPECT_THAT(c->Sign(Call()),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("/dev/full")));
  EXPECT_GE(daemon::AuditWriteFailures(), before + 2);  // every lost record counts
  EXPECT_GE(Value(Scrape(env_->daemon().metrics_port()), "shaken_audit_write_failures_total"),
            2.0);
  EXPECT_EQ(Value(Scrape(env_->daemon().metrics_port()), "shaken_audit_available"), 0.0);
  ASSERT_OK(daemon::InitLogging(daemon::LogFormat::kText, daemon::LogLevel::kInfo, ""));
  EXPECT_OK(c->Sign(Call()));
}

}  // namespace
}  // namespace shaken::testing
