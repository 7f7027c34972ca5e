// conformance_runner: executes every case of conformance/cases/*.json (case_runner.h) and the
// signer checks (signer_checks.h) on the shared harness (harness.h); runs the secsipidx and
// OpenSSL interop (interop.cc); writes REPORT.md and report.json. Exits 1 when any case fails (a
// regression fails CI), 2 on a set-up or usage error.
//
//   conformance_runner --source-dir <repo> --out <dir> [--secsipidx PATH] [--openssl PATH]
//                      [--only <case-id-prefix>]
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "conformance/case_runner.h"
#include "conformance/harness.h"
#include "conformance/interop.h"
#include "conformance/runner.h"
#include "conformance/signer_checks.h"

namespace shaken::conformance {
namespace {

int Main(int argc, char** argv) {
  Harness h;
  CLI::App app{"conformance_runner: the standards checklist (conformance/README.md)"};
  app.add_option("--source-dir", h.args.source_dir, "the repository (cases, vectors)")->required();
  app.add_option("--out", h.args.out, "where REPORT.md and report.json go")->required();
  app.add_option("--secsipidx", h.args.secsipidx,
                 "secsipidx binary; without it the secsipidx comparisons and interop are skipped");
  app.add_option("--openssl", h.args.openssl, "openssl binary")->capture_default_str();
  app.add_option("--only", h.args.only, "run only the cases whose id starts with this");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (h.args.secsipidx.empty()) std::cerr << "conformance_runner: " << kNoSecsipidx << "\n";
  const absl::Time start = absl::Now();
  if (absl::Status s = SetUp(&h); !s.ok()) {
    std::cerr << "set-up failed: " << s << "\n";
    return 2;
  }

  Report report;
  report.generated_at = absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", start, absl::UTCTimeZone());
  report.command = "ctest -L conformance (or: cmake --build <build> --target conformance_report)";
  absl::StatusOr<Json> reqs = LoadJsonFile(h.args.source_dir + "/conformance/requirements.json");
  if (!reqs.ok()) {
    std::cerr << reqs.status() << "\n";
    return 2;
  }
  report.requirements = (*reqs)["requirements"];

  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(h.args.source_dir + "/conformance/cases")) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    absl::StatusOr<Json> doc = LoadJsonFile(file.string());
    if (!doc.ok() || !Member(*doc, "cases").is_array()) {
      CaseResult bad;
      bad.id = file.filename().string();
      bad.status = "fail";
      bad.failure = doc.ok() ? "no \"cases\" array" : std::string(doc.status().message());
      report.cases.push_back(bad);
      continue;
    }
    for (const Json& c : (*doc)["cases"]) {
      CaseResult r;
      r.id = Str(c, "id");
      if (!h.args.only.empty() && !absl::StartsWith(r.id, h.args.only)) continue;
      r.file = file.filename().string();
      r.kind = Str(c, "kind");
      r.title = Str(c, "title");
      r.why = Str(c, "why");
      r.expect = Member(c, "expect");
      r.expected_fail = Str(Member(c, "expected_fail"), "reason");
      for (const Json& q : Member(c, "requirements")) {
        if (q.is_string()) r.requirements.push_back(q.get<std::string>());
      }
      if (r.kind == "signer") {
        r.stir.ran = true;
        r.daemon.skip_why = "signer (AS) check";
        r.peer_note = "signer (AS) check";
        absl::Status s = RunSignerCheck(&h, Str(Member(c, "signer"), "check"), &r.signer_detail);
        r.stir.passed = s.ok();
        r.stir.reason = s.ok() ? "ok" : std::string(s.message());
        if (!s.ok()) r.stir.mismatch = s.ToString();
      } else if (absl::Status s = RunCase(&h, c, &r); !s.ok()) {
        r.stir.ran = true;
        r.stir.mismatch = absl::StrCat("case could not run: ", s.ToString());
      }
      Judge(&r);
      if (r.status == "fail" || r.status == "xpass") {
        std::cerr << "FAIL " << r.id << ": " << r.failure << "\n";
      }
      report.cases.push_back(std::move(r));
    }
  }

  if (h.args.only.empty() && h.args.secsipidx.empty()) {
    report.interop_notes.push_back(kNoSecsipidx);
  } else if (h.args.only.empty()) {
    InteropDeps deps;
    deps.env = h.env.get();
    deps.client = h.client.get();
    deps.dir = h.dir.get();
    deps.secsipidx = h.args.secsipidx;
    deps.openssl = h.args.openssl;
    deps.untrusted_pki = h.other_pki.get();
    if (absl::Status s = RunInterop(deps, &report); !s.ok()) {
      InteropCount failed{"interop set-up", s.ToString(), 0, 1, {s.ToString()}};
      report.interop.push_back(failed);
    }
  }
  h.rogue_tls->Stop();
  report.seconds = absl::ToDoubleSeconds(absl::Now() - start);

  if (absl::Status s = WriteReport(report, h.args.out); !s.ok()) {
    std::cerr << "cannot write the report: " << s << "\n";
    return 2;
  }
  int failed = 0, xfail = 0;
  for (const CaseResult& r : report.cases) {
    failed += r.status == "fail" || r.status == "xpass";
    xfail += r.status == "xfail";
  }
  std::cout << report.cases.size() << " cases, " << failed << " failed, " << xfail
            << " expected failures; report in " << h.args.out << "/REPORT.md ("
            << report.seconds << " s)\n";
  for (const InteropCount& i : report.interop) {
    std::cout << "interop " << i.name << ": " << i.passed << "/" << i.total << "\n";
  }
  return Failed(report) ? 1 : 0;
}

}  // namespace
}  // namespace shaken::conformance

int main(int argc, char** argv) { return shaken::conformance::Main(argc, argv); }
