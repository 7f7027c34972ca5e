#include "daemon/config.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace shaken::daemon {
namespace {

using ::shaken::testing::IsOk;
using ::shaken::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kMinimal[] = R"(
listen:
  api: 127.0.0.1:50051
  allow_insecure: true
profiles:
  - name: lab
    key: file:/etc/shakend/sp.key
    x5u: https://cert.example.org/sp.pem
    certificate: /etc/shakend/sp.pem
verifier:
  ca_file: /etc/shakend/sti-ca.pem
)";

TEST(ConfigTest, MinimalLabConfigAndDefaults) {
  auto c = ParseConfig(kMinimal, "t.yaml");
  ASSERT_OK(c);
  EXPECT_EQ(c->api_listen, "127.0.0.1:50051");
  ASSERT_EQ(c->profiles.size(), 1u);
  EXPECT_TRUE(c->profiles[0].is_default);
  EXPECT_EQ(c->profiles[0].attest, (std::vector<std::string>{"A", "B", "C"}));
  EXPECT_EQ(c->verifier.iat_window, absl::Seconds(60));
  EXPECT_EQ(c->verifier.policy, stir::ProfileStrictness::kStrict);
  EXPECT_EQ(c->max_iat_skew, absl::Seconds(60));
  EXPECT_FALSE(c->verifier.x5u_policy.allow_private_addresses);
  EXPECT_EQ(c->log_level, LogLevel::kInfo);
  EXPECT_EQ(c->log_format, LogFormat::kText);
  EXPECT_EQ(c->audit_on_failure, AuditFailurePolicy::kRefuse);
}

// Errors point at the line of the key in the file, whatever its depth.
TEST(ConfigTest, ErrorsGiveTheFileAndLineOfTheKey) {
  // kMinimal starts with a newline: "listen:" is line 2, "  - name: lab" line 6.
  std::string misspelt = kMinimal;
  misspelt.replace(misspelt.find("    x5u:"), 0, "    attset: [A]\n");  // line 8
  EXPECT_THAT(ParseConfig(misspelt, "t.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("t.yaml:8: profiles[0].attset is not a known setting")));
  std::string bad_port = kMinimal;
  bad_port.replace(bad_port.find("cert.example.org/"), 16, "cert.example.org:9/");  // line 8
  EXPECT_THAT(ParseConfig(bad_port, "t.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("t.yaml:8: profiles[0].x5u")));
  // A required key that is absent: the line of the section that lacks it.
  std::string no_tls = kMinimal;
  no_tls.erase(no_tls.find("  allow_insecure: true\n"), 23);
  EXPECT_THAT(ParseConfig(no_tls, "t.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("t.yaml:2: listen.tls")));
  // Pointing at a key of the file for messages made from the parsed configuration.
  const std::string path = ::testing::TempDir() + "/where.yaml";
  {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(kMinimal, f);
    std::fclose(f);
  }
  EXPECT_THAT(LocateInConfigFile(path, {"profiles[0].certificate (profile lab): /x: gone",
                                        "verifier.ca_file: /y: gone", "nowhere.key: z"}),
              ::testing::ElementsAre(path + ":9: profiles[0].certificate (profile lab): /x: gone",
                                     path + ":11: verifier.ca_file: /y: gone",
                                     path + ": nowhere.key: z"));
}

TEST(ConfigTest, ReflectionIsOnTheApiListenerByDefaultAndCanBeTurnedOff) {
  auto c = ParseConfig(kMinimal, "t.yaml");
  ASSERT_OK(c);
  EXPECT_EQ(c->reflection, "api");
  std::string off = kMinimal;
  off.replace(off.find("  allow_insecure"), 0, "  reflection: off\n");
  auto o = ParseConfig(off, "t.yaml");
  ASSERT_OK(o);
  EXPECT_EQ(o->reflection, "off");
  std::string bad = kMinimal;
  bad.replace(bad.find("  allow_insecure"), 0, "  reflection: health\n");
  EXPECT_THAT(ParseConfig(bad, "t.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("listen.reflection")));
}

TEST(ConfigTest, ConnectionsAgeOutSoThatReplicasAddedLaterGetTheirShare) {
  auto c = ParseConfig(kMinimal, "t.yaml");
  ASSERT_OK(c);
  EXPECT_EQ(c->max_connection_age, absl::Minutes(30));
  EXPECT_EQ(c->max_connection_age_grace, absl::Seconds(30));
  std::string never = kMinimal;
  never.replace(never.find("  allow_insecure"), 0, "  max_connection_age: 0s\n");
  ASSERT_OK_AND_ASSIGN(Config n, ParseConfig(never, "t.yaml"));
  EXPECT_EQ(n.max_connection_age, absl::ZeroDuration());
  std::string tiny = kMinimal;
  tiny.replace(tiny.find("  allow_insecure"), 0, "  max_connection_age: 2s\n");
  EXPECT_THAT(ParseConfig(tiny, "t.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("listen.max_connection_age"), HasSubstr("at least 10s"))));
}

TEST(ConfigTest, SipListenerAndClientSources) {
  std::string yaml = kMinimal;
  yaml.replace(yaml.find("  allow_insecure"), 0,
               "  sip:\n    udp: 0.0.0.0:5060\n    tcp: 127.0.0.1:0\n    role: sign\n"
               "    dest: request-uri\n    attestation_headers: [X-Attestation-Info]\n"
               "    default_attest: C\n    verify_failure: decline\n    retry_after: 30s\n"
               "    timer_i: 2s\n    udp_receive_buffer: 1048576\n");
  yaml += "clients:\n  - {identity: sbc-east, methods: [Sign, Verify], sources: [10.1.0.0/16, "
          "\"2001:db8::/32\"], profiles: [lab], sip_role: verify, sip_profile: lab, "
          "sip_default_attest: B}\n";
  auto c = ParseConfig(yaml, "t.yaml");
  ASSERT_OK(c);
  ASSERT_TRUE(c->sip.has_value());
  EXPECT_EQ(c->sip->udp, "0.0.0.0:5060");
  EXPECT_EQ(c->sip->tcp, "127.0.0.1:0");
  EXPECT_EQ(c->sip->role, SipRole::kSign);
  EXPECT_TRUE(c->sip->dest_from_request_uri);
  EXPECT_EQ(c->sip->attestation_headers, std::vector<std::string>{"X-Attestation-Info"});
  EXPECT_EQ(c->sip->default_attest, "C");
  EXPECT_TRUE(c->sip->decline_failed);
  EXPECT_EQ(c->sip->retry_after, absl::Seconds(30));
  EXPECT_EQ(c->sip->timer_i, absl::Seconds(2));
  EXPECT_EQ(c->sip->udp_receive_buffer, 1048576u);
  ASSERT_EQ(c->clients.size(), 1u);
  EXPECT_EQ(c->clients[0].sources.size(), 2u);
  EXPECT_EQ(c->clients[0].sip_role, SipRole::kVerify);
  EXPECT_EQ(c->clients[0].sip_profile, "lab");
  EXPECT_EQ(c->clients[0].sip_default_attest, "B");
  // Without listen.sip there is no SIP server; the defaults are the documented ones.
  auto none = ParseConfig(kMinimal, "t.yaml");
  ASSERT_OK(none);
  EXPECT_FALSE(none->sip.has_value());
  SipConfig defaults;
  EXPECT_EQ(defaults.role, SipRole::kAuto);
  EXPECT_EQ(defaults.attestation_headers.size(), 4u);
  EXPECT_FALSE(defaults.decline_failed);
  EXPECT_EQ(defaults.timer_i, absl::Milliseconds(500));
  EXPECT_EQ(defaults.udp_receive_buffer, 4u << 20);
}

TEST(ConfigTest, SipErrorsNameTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"  sip: {}\n", "listen.sip.udp or tcp is required"},
      {"  sip: {udp: 5060}\n", "listen.sip.udp"},
      {"  sip: {tcp: \"127.0.0.1:99999\"}\n", "listen.sip.tcp"},
      {"  sip: {udp: \"127.0.0.1:5060\", role: both}\n", "listen.sip.role"},
      {"  sip: {udp: \"127.0.0.1:5060\", dest: from}\n", "listen.sip.dest"},
      {"  sip: {udp: \"127.0.0.1:5060\", default_attest: D}\n", "listen.sip.default_attest"},
      {"  sip: {udp: \"127.0.0.1:5060\", verify_failure: drop}\n", "listen.sip.verify_failure"},
      {"  sip: {udp: \"127.0.0.1:5060\", attestation_headers: [\"A: B\"]}\n",
       "listen.sip.attestation_headers"},
      {"  sip: {udp: \"127.0.0.1:5060\", timeout: 1ms}\n", "listen.sip.timeout"},
      {"  sip: {udp: \"127.0.0.1:5060\", retry_after: 0s}\n", "listen.sip.retry_after"},
      {"  sip: {udp: \"127.0.0.1:5060\", max_message_bytes: 10}\n",
       "listen.sip.max_message_bytes"},
      {"  sip: {udp: \"127.0.0.1:5060\", timer_i: 0s}\n", "listen.sip.timer_i"},
      {"  sip: {udp: \"127.0.0.1:5060\", timer_i: 1m}\n", "listen.sip.timer_i"},
      {"  sip: {udp: \"127.0.0.1:5060\", udp_receive_buffer: -1}\n",
       "listen.sip.udp_receive_buffer"},
      {"  sip: {udp: \"127.0.0.1:5060\", tls: x}\n", "listen.sip.tls is not a known setting"},
      {"  sip: {udp: \"127.0.0.1:5060\", profile: nope}\n", "listen.sip.profile names profile"},
  };
  for (const auto& [sip, key] : cases) {
    std::string yaml = kMinimal;
    yaml.replace(yaml.find("  allow_insecure"), 0, sip);
    EXPECT_THAT(ParseConfig(yaml, "t.yaml"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(key)))
        << sip;
  }
  const std::vector<std::pair<std::string, std::string>> rules = {
      {"{identity: a, methods: [Sign], sources: [10.0.0.1/8]}", "clients[0].sources[0]"},
      {"{identity: a, methods: [Sign], sources: [sbc.example]}", "clients[0].sources[0]"},
      {"{identity: a, methods: [Sign], sip_role: verify}", "clients[0].sip_role"},
      {"{identity: a, methods: [Sign], sources: [10.0.0.0/8], sip_role: x}",
       "clients[0].sip_role"},
      {"{identity: a, methods: [Sign], sip_profile: lab}",
       "clients[0].sip_profile applies to SIP clients only"},
      {"{identity: a, methods: [Sign], sip_default_attest: A}",
       "clients[0].sip_default_attest applies to SIP clients only"},
      {"{identity: a, methods: [Sign], sources: [10.0.0.0/8], sip_default_attest: D}",
       "clients[0].sip_default_attest must be A, B or C"},
      {"{identity: a, methods: [Sign], sources: [10.0.0.0/8], sip_profile: nope}",
       "clients[0].sip_profile names profile \"nope\", which is not in profiles"},
  };
  for (const auto& [rule, key] : rules) {
    EXPECT_THAT(ParseConfig(absl::StrCat(kMinimal, "clients:\n  - ", rule, "\n"), "t.yaml"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(key)))
        << rule;
  }
}

// SIP signing choices that would refuse every INVITE they apply to are configuration errors.
TEST(ConfigTest, SipSigningThatCouldNeverSucceedIsRefused) {
  std::string yaml = kMinimal;
  yaml.replace(yaml.find("  allow_insecure"), 0, "  sip: {udp: \"127.0.0.1:5060\"}\n");
  yaml.replace(yaml.find("    certificate: /etc/shakend/sp.pem\n"), 0, "    attest: [C]\n");
  const std::vector<std::pair<std::string, std::string>> cases = {
      // The rule's profiles do not allow the profile its INVITEs are signed with.
      {"{identity: a, methods: [Sign], sources: [10.0.0.0/8], profiles: [other]}",
       "clients[0]: its INVITEs are signed with profile \"lab\" (listen.sip.profile"},
      // The profile may not sign the rule's default level.
      {"{identity: a, methods: [Sign], sources: [10.0.0.0/8], profiles: [lab], "
       "sip_default_attest: A}",
       "clients[0]: sip_default_attest A is not a level profile \"lab\" may sign (its attest: C)"},
  };
  for (const auto& [rule, want] : cases) {
    EXPECT_THAT(ParseConfig(absl::StrCat(yaml, "clients:\n  - ", rule, "\n"), "t.yaml"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(want)))
        << rule;
  }
  // Without rules, the listener's own default level against its profile.
  std::string listener = yaml;
  listener.replace(listener.find("127.0.0.1:5060\"}"), 16, "127.0.0.1:5060\", default_attest: B}");
  EXPECT_THAT(ParseConfig(listener, "t.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("listen.sip: default_attest B is not a level profile \"lab\"")));
  // Allowed choices pass; a Verify-only SIP client signs nothing, so nothing is checked.
  for (const std::string& rule :
       {"{identity: a, methods: [Sign], sources: [10.0.0.0/8], profiles: [\"*\"], "
        "sip_default_attest: C}",
        "{identity: a, methods: [Verify], sources: [10.0.0.0/8]}"}) {
    EXPECT_OK(ParseConfig(absl::StrCat(yaml, "clients:\n  - ", rule, "\n"), "t.yaml")) << rule;
  }
}

TEST(ConfigTest, WarnsAboutClientRulesNamingProfilesThatDoNotExist) {
  ASSERT_OK_AND_ASSIGN(Config c, ParseConfig(kMinimal, "t.yaml"));
  EXPECT_TRUE(ConfigWarnings(c).empty());
  c.clients.push_back({.identity = "sbc1", .methods = {"Sign"}, .profiles = {"lab", "*"}});
  c.clients.push_back({.identity = "sbc2", .methods = {"Sign"}, .profiles = {"mian"}});
  EXPECT_THAT(ConfigWarnings(c),
              ::testing::ElementsAre(AllOf(HasSubstr("clients[1].profiles"),
                                           HasSubstr("\"mian\", which does not exist"),
                                           HasSubstr("profiles: lab"))));
}

TEST(ConfigTest, FullConfig) {
  auto c = ParseConfig(R"(
listen:
  api: 0.0.0.0:50051
  health: 0.0.0.0:8081
  metrics: 0.0.0.0:9464
  tls: {cert_file: s.pem, key_file: s.key, client_ca_file: clients.pem}
clients:
  - {identity: sbc1.example.net, methods: [Sign, SignStream], profiles: [main]}
  - {identity: "*", methods: [Verify]}
pkcs11:
  module: /usr/lib/softhsm/libsofthsm2.so
  pin_source: env:SHAKEND_PIN
  pool_size: 4
  key_copy: required
  quirks: [no-finalize, keep-sessions-open]
profiles:
  - {name: main, key: "pkcs11:token=t;object=k;type=private", x5u: "https://c.example/m.pem",
     certificate: m.pem, attest: [A, B]}
  - {name: gw, key: "file:gw.key", x5u: "https://c.example/g.pem", certificate: g.pem,
     attest: [C], default: true}
verifier:
  ca_dir: /etc/shakend/ca
  policy: lenient
  iat_window: 90s
  cache_negative_ttl: 5s
  lab: {allow_private_addresses: true, allow_cidrs: [10.20.0.0/16, "fd12::/16"]}
logging: {level: debug, format: json, audit_tns: true}
max_iat_skew: 30s
drain_grace: 3s
)",
                       "full.yaml");
  ASSERT_OK(c);
  EXPECT_EQ(c->clients.size(), 2u);
  EXPECT_EQ(c->pkcs11->pool_size, 4);
  EXPECT_EQ(c->pkcs11->key_copy, hsm::KeyCopy::kRequired);
  EXPECT_FALSE(c->profiles[0].is_default);
  EXPECT_TRUE(c->profiles[1].is_default);
  EXPECT_EQ(c->verifier.iat_window, absl::Seconds(90));
  EXPECT_TRUE(c->verifier.x5u_policy.allow_private_addresses);
  ASSERT_EQ(c->verifier.x5u_policy.allow_cidrs.size(), 2u);
  EXPECT_EQ(c->verifier.x5u_policy.allow_cidrs[0].prefix_length, 16);
  EXPECT_EQ(c->log_format, LogFormat::kJson);
  // Parsed once into their types: nothing is re-mapped from strings later.
  EXPECT_EQ(c->log_level, LogLevel::kDebug);
  EXPECT_EQ(c->audit_on_failure, AuditFailurePolicy::kRefuse);
  EXPECT_EQ(c->verifier.policy, stir::ProfileStrictness::kLenient);
  ASSERT_TRUE(c->pkcs11->quirks.has_value());
  EXPECT_FALSE(c->pkcs11->quirks->finalize_on_unload);
  EXPECT_FALSE(c->pkcs11->quirks->close_pooled_sessions);
  EXPECT_FALSE(c->pkcs11->quirks->reinitialize_on_token_loss);
  ASSERT_TRUE(c->pkcs11->pin_source.has_value());
  EXPECT_EQ(c->pkcs11->pin_source->Describe(), "env:SHAKEND_PIN");
  EXPECT_EQ(c->drain_grace, absl::Seconds(3));
}

struct BadCase {
  const char* name;
  std::string yaml;
  const char* message;
};

TEST(ConfigTest, ErrorsNameTheKeyAndWhatToFix) {
  std::string base = kMinimal;
  std::vector<BadCase> cases = {
      {"unknown top key", base + "colour: blue\n", "colour is not a known setting"},
      {"unknown nested key", std::string(kMinimal) + "logging: {levle: info}\n",
       "logging.levle is not a known setting"},
      {"bad yaml", "profiles: [", "not valid YAML"},
      {"no tls", R"(
profiles: [{name: a, key: "file:k", x5u: "https://x/c", certificate: c}]
verifier: {enabled: false}
)",
       "listen.tls is required"},
      {"pin in uri", R"(
listen: {allow_insecure: true}
pkcs11: {module: /m.so, pin_source: "file:/p"}
profiles: [{name: a, key: "pkcs11:object=k;pin-value=1234", x5u: "https://x/c", certificate: c}]
verifier: {enabled: false}
)",
       "must not carry pin-value"},
      {"pin literal", R"(
listen: {allow_insecure: true}
pkcs11: {module: /m.so, pin_source: "1234"}
profiles: [{name: a, key: "pkcs11:object=k", x5u: "https://x/c", certificate: c}]
verifier: {enabled: false}
)",
       "pkcs11.pin_source must be file:"},
      {"http x5u", R"(
listen: {allow_insecure: true}
profiles: [{name: a, key: "file:k", x5u: "http://x/c", certificate: c}]
verifier: {enabled: false}
)",
       "profiles[0].x5u"},
      {"attest D", R"(
listen: {allow_insecure: true}
profiles: [{name: a, key: "file:k", x5u: "https://x/c", certificate: c, attest: [A, D]}]
verifier: {enabled: false}
)",
       "profiles[0].attest has \"D\""},
      {"duplicate profile", R"(
listen: {allow_insecure: true}
profiles:
  - {name: a, key: "file:k", x5u: "https://x/c", certificate: c}
  - {name: a, key: "file:k", x5u: "https://x/c", certificate: c}
verifier: {enabled: false}
)",
       "used twice"},
      {"no trust anchors", R"(
listen: {allow_insecure: true}
profiles: [{name: a, key: "file:k", x5u: "https://x/c", certificate: c}]
)",
       "verifier.ca_file"},
      {"passphrase for a token key", R"(
listen: {allow_insecure: true}
pkcs11: {module: /m.so, pin_source: "file:/p"}
profiles: [{name: a, key: "pkcs11:object=k", key_passphrase_source: "file:/p", x5u: "https://x/c",
            certificate: c}]
verifier: {enabled: false}
)",
       "profiles[0].key_passphrase_source is for an encrypted PEM key file"},
      {"passphrase literal", R"(
listen: {allow_insecure: true}
profiles: [{name: a, key: "file:k", key_passphrase_source: "hunter2", x5u: "https://x/c",
            certificate: c}]
verifier: {enabled: false}
)",
       "never the passphrase itself"},
      {"pin source names no file", R"(
listen: {allow_insecure: true}
pkcs11: {module: /m.so, pin_source: "file:"}
profiles: [{name: a, key: "pkcs11:object=k", x5u: "https://x/c", certificate: c}]
verifier: {enabled: false}
)",
       "pkcs11.pin_source must be file:/path, env:VARIABLE or an absolute path (\"file:\" names "
       "no file)"},
      {"passphrase source names no variable", R"(
listen: {allow_insecure: true}
profiles: [{name: a, key: "file:k", key_passphrase_source: "env:", x5u: "https://x/c",
            certificate: c}]
verifier: {enabled: false}
)",
       "profiles[0].key_passphrase_source must be file:/path, env:VARIABLE or an absolute path "
       "(\"env:\" names no variable)"},
      {"bad key_copy", R"(
listen: {allow_insecure: true}
pkcs11: {module: /m.so, pin_source: "file:/p", key_copy: sometimes}
profiles: [{name: a, key: "pkcs11:object=k", x5u: "https://x/c", certificate: c}]
verifier: {enabled: false}
)",
       "pkcs11.key_copy must be never, if-allowed or required"},
      {"bad quirk", R"(
listen: {allow_insecure: true}
pkcs11: {module: /m.so, pin_source: "file:/p", quirks: [no-finalise]}
profiles: [{name: a, key: "pkcs11:object=k", x5u: "https://x/c", certificate: c}]
verifier: {enabled: false}
)",
       "pkcs11.quirks has \"no-finalise\""},
      {"bad level", base + "logging: {level: verbose}\n",
       "logging.level must be trace, debug, info, warn or error"},
      {"bad audit policy", base + "logging: {audit_on_failure: ignore}\n",
       "logging.audit_on_failure must be refuse or continue"},
      {"bad policy", R"(
listen: {allow_insecure: true}
profiles: [{name: a, key: "file:k", x5u: "https://x/c", certificate: c}]
verifier: {ca_file: /ca.pem, policy: relaxed}
)",
       "verifier.policy must be strict or lenient"},
      {"bad duration", base + "drain_grace: soon\n", "drain_grace must be a duration"},
      {"bad number", std::string(kMinimal) + "max_request_bytes: -5\n", "max_request_bytes"},
      {"bad method", base + "clients: [{identity: '*', methods: [Delete]}]\n", "Delete"},
      {"no profiles", "listen: {allow_insecure: true}\nverifier: {enabled: false}\n",
       "profiles is required"},
  };
  for (const BadCase& c : cases) {
    auto cfg = ParseConfig(c.yaml, "bad.yaml");
    EXPECT_THAT(cfg, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.name;
    if (!cfg.ok()) {
      EXPECT_THAT(std::string(cfg.status().message()), HasSubstr("bad.yaml"));
    }
  }
}

// pkcs11.pin_source and key_passphrase_source are read by hsm::PinSource::Parse, as shakenctl's
// --pin-source and a key URI's pin-source are: a bare absolute path is a file there too.
TEST(ConfigTest, SecretSourcesAreParsedOnce) {
  auto c = ParseConfig(R"(
listen: {allow_insecure: true}
pkcs11: {module: /m.so, pin_source: /run/secrets/pin}
profiles:
  - {name: t, key: "pkcs11:object=k", x5u: "https://x/c", certificate: c}
  - {name: f, key: "file:k", key_passphrase_source: "env:KEY_PASS", x5u: "https://x/c",
     certificate: c}
verifier: {enabled: false}
)",
                       "t.yaml");
  ASSERT_OK(c);
  ASSERT_TRUE(c->pkcs11->pin_source.has_value());
  EXPECT_EQ(c->pkcs11->pin_source->Describe(), "file:/run/secrets/pin");
  EXPECT_FALSE(c->profiles[0].key_passphrase_source.has_value());
  ASSERT_TRUE(c->profiles[1].key_passphrase_source.has_value());
  EXPECT_EQ(c->profiles[1].key_passphrase_source->Describe(), "env:KEY_PASS");
}

// ATIS-1000080 CE-12: a profile's x5u passes the same URL policy as the daemon's own x5u fetcher
// (stir::CheckX5uUrl), so `shakend --check-config` refuses what every verifier would answer 436.
TEST(ConfigTest, ProfileX5uFollowsTheFetchersPolicy) {
  auto with_x5u = [](const std::string& x5u, const std::string& lab = "") {
    return absl::StrCat(R"(
listen: {allow_insecure: true}
profiles: [{name: a, key: "file:k", x5u: ")", x5u, R"(", certificate: c}]
verifier: {ca_file: /ca.pem)", lab, "}\n");
  };
  auto bad = ParseConfig(with_x5u("https://cert.example.org:9443/sp.pem"), "t.yaml");
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("profiles[0].x5u")));
  EXPECT_THAT(bad.status().message(), HasSubstr("port must be 443 or 8443"));
  EXPECT_THAT(bad.status().message(), HasSubstr("not 9443"));
  EXPECT_THAT(bad.status().message(), HasSubstr("Publish the certificate chain at"));
  for (const char* good : {"https://cert.example.org/sp.pem", "https://cert.example.org:443/sp.pem",
                           "https://cert.example.org:8443/sp.pem"}) {
    EXPECT_OK(ParseConfig(with_x5u(good), "t.yaml")) << good;
  }
  // A lab that lets its verifier fetch from any port may publish there too (one policy).
  EXPECT_OK(ParseConfig(with_x5u("https://127.0.0.1:9443/sp.pem", ", lab: {allow_any_port: true}"),
                        "t.yaml"));
  EXPECT_THAT(ParseConfig(with_x5u("http://cert.example.org/sp.pem"), "t.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("https")));
}

// listen.rest: the REST front end; its own TLS or the API's, plain HTTP only when said.
TEST(ConfigTest, RestListener) {
  auto with_rest = [](const std::string& rest, const std::string& api_tls = "") {
    std::string y = kMinimal;
    y.replace(y.find("  allow_insecure: true\n"), 0, api_tls + "  rest:\n" + rest);
    return y;
  };
  auto c = ParseConfig(with_rest("    address: 127.0.0.1:8080\n    allow_insecure: true\n"), "t.yaml");
  ASSERT_OK(c);
  ASSERT_TRUE(c->rest.has_value());
  EXPECT_EQ(c->rest->address, "127.0.0.1:8080");
  EXPECT_EQ(c->rest->base_path, "");
  EXPECT_EQ(c->rest->max_body_bytes, 64u * 1024);
  EXPECT_EQ(c->rest->request_timeout, absl::Seconds(5));
  EXPECT_EQ(c->rest->EffectiveTls(c->tls), nullptr);
  EXPECT_FALSE(ParseConfig(kMinimal, "t.yaml")->rest.has_value());

  const std::string api_tls =
      "  tls: {cert_file: /a.pem, key_file: /a.key, client_ca_file: /ca.pem}\n";
  auto inherits = ParseConfig(
      with_rest("    address: 0.0.0.0:8443\n    base_path: /StirShakenWeb/resources/v1\n"
                "    max_body_bytes: 8192\n    request_timeout: 2s\n",
                api_tls),
      "t.yaml");
  ASSERT_OK(inherits);
  ASSERT_NE(inherits->rest->EffectiveTls(inherits->tls), nullptr);
  EXPECT_EQ(inherits->rest->EffectiveTls(inherits->tls)->client_ca_file, "/ca.pem");
  EXPECT_EQ(inherits->rest->base_path, "/StirShakenWeb/resources/v1");
  auto own = ParseConfig(
      with_rest("    address: 0.0.0.0:8443\n    tls: {cert_file: /r.pem, key_file: /r.key}\n"),
      "t.yaml");
  ASSERT_OK(own);
  EXPECT_EQ(own->rest->EffectiveTls(own->tls)->cert_file, "/r.pem");
  std::vector<std::string> problems = CheckReferencedFiles(*own);
  EXPECT_THAT(absl::StrJoin(problems, "\n"), HasSubstr("listen.rest.tls.cert_file: /r.pem"));

  for (const auto& [rest, key] : std::vector<std::pair<std::string, std::string>>{
           {"    allow_insecure: true\n", "listen.rest.address"},
           {"    address: 127.0.0.1:1\n", "listen.rest.allow_insecure"},
           {"    address: 127.0.0.1:1\n    allow_insecure: true\n    base_path: api/\n",
            "listen.rest.base_path"},
           {"    address: 127.0.0.1:1\n    allow_insecure: true\n    max_body_bytes: 10\n",
            "listen.rest.max_body_bytes"},
           {"    address: 127.0.0.1:1\n    allow_insecure: true\n    idle_timeout: 0s\n",
            "listen.rest.idle_timeout"},
           {"    address: 127.0.0.1:1\n    allow_insecure: true\n    port: 8080\n",
            "listen.rest.port"},
           {"    address: 127.0.0.1:1\n    allow_insecure: true\n    tls: {cert_file: /a}\n",
            "listen.rest.tls.cert_file"},
       }) {
    EXPECT_THAT(ParseConfig(with_rest(rest), "t.yaml"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(key)))
        << rest;
  }
  // Client rules by name need client certificates on the REST listener too.
  std::string named = with_rest("    address: 127.0.0.1:1\n    tls: {cert_file: /r, key_file: /k}\n");
  named += "clients:\n  - {identity: sbc1, methods: [Sign]}\n";
  EXPECT_THAT(ParseConfig(named, "t.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("listen.rest.tls")));
}

TEST(ConfigTest, MissingFile) {
  EXPECT_THAT(LoadConfig("/nonexistent/shakend.yaml"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(ConfigTest, CaListUrlIsTheOnlyTrustSourceOrAnAddedOneUnderTheX5uPolicy) {
  std::string no_ca_file = kMinimal;
  no_ca_file.replace(no_ca_file.find("  ca_file: /etc/shakend/sti-ca.pem\n"),
                     std::string("  ca_file: /etc/shakend/sti-ca.pem\n").size(), "");
  EXPECT_THAT(ParseConfig(no_ca_file, "t.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("verifier.ca_file or verifier.ca_dir or verifier.ca_list_url")));
  auto c = ParseConfig(no_ca_file + "  ca_list_url: https://sti-pa.example/ca-list.pem\n"
                                    "  ca_list_cache_file: /var/lib/shakend/ca-list.pem\n",
                       "t.yaml");
  ASSERT_OK(c);
  EXPECT_EQ(c->verifier.ca_list_refresh, absl::Hours(24));
  EXPECT_EQ(c->verifier.ca_list_retry, absl::Minutes(5));
  EXPECT_TRUE(VerifierSettingsFrom(c->verifier).validator.anchors_may_be_empty);
  EXPECT_THAT(ParseConfig(std::string(kMinimal) + "  ca_list_url: http://sti-pa.example/l.pem\n",
                          "t.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("verifier.ca_list_url is fetched with the x5u policy")));
  EXPECT_THAT(ParseConfig(std::string(kMinimal) +
                              "  ca_list_url: https://sti-pa.example/l.pem\n"
                              "  ca_list_refresh: 0s\n",
                          "t.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("verifier.ca_list_refresh must be at least 1s")));
}

}  // namespace
}  // namespace shaken::daemon

namespace shaken::daemon {
namespace {

TEST(ConfigTest, CrlDistributionPointsAreFollowedByDefaultWithSoftFail) {
  auto c = ParseConfig(kMinimal, "t.yaml");
  ASSERT_OK(c);
  EXPECT_TRUE(c->verifier.crl_distribution_points);
  EXPECT_EQ(c->verifier.crl_unavailable, stir::CrlFailureMode::kSoftFail);
  stir::VerifierSettings s = VerifierSettingsFrom(c->verifier);
  EXPECT_TRUE(s.follow_crl_distribution_points);
  EXPECT_EQ(s.crl.on_unavailable, stir::CrlFailureMode::kSoftFail);
  EXPECT_EQ(s.fetcher.max_crl_bytes, size_t{1} << 20);

  std::string hard = std::string(kMinimal) +
                     "  crl_unavailable: hard-fail\n  crl_max_bytes: 65536\n"
                     "  crl_cache_max_entries: 10\n  crl_retry_after: 2m\n";
  auto h = ParseConfig(hard, "t.yaml");
  ASSERT_OK(h);
  s = VerifierSettingsFrom(h->verifier);
  EXPECT_EQ(s.crl.on_unavailable, stir::CrlFailureMode::kHardFail);
  EXPECT_EQ(s.fetcher.max_crl_bytes, 65536u);
  EXPECT_EQ(s.crl.max_entries, 10u);
  EXPECT_EQ(s.crl.retry_after, absl::Minutes(2));
}

TEST(ConfigTest, CrlSettingErrorsNameTheKey) {
  const std::string base = kMinimal;
  EXPECT_THAT(ParseConfig(base + "  crl_unavailable: ignore\n", "t.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("verifier.crl_unavailable must be soft-fail or hard-fail")));
  EXPECT_THAT(ParseConfig(base + "  crl_max_bytes: 10\n", "t.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("verifier.crl_max_bytes")));
  EXPECT_THAT(ParseConfig(base + "  crl_retry_after: 0s\n", "t.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("verifier.crl_retry_after must be positive")));
  EXPECT_THAT(ParseConfig(base + "  crl_distribution_points: maybe\n", "t.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("verifier.crl_distribution_points")));
}

}  // namespace
}  // namespace shaken::daemon
