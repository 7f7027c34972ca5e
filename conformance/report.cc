// report.cc: REPORT.md (for people) and report.json (for tools) from a run.
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "conformance/runner.h"

namespace shaken::conformance {
namespace {

using stir::Json;

std::string Cell(std::string s) {
  s = absl::StrReplaceAll(s, {{"|", "\\|"}, {"\n", " "}});
  if (s.size() > 220) s = s.substr(0, 217) + "...";
  return s;
}

std::string Expected(const Json& e) {
  if (!e.is_object() || e.empty()) return "";
  if (e.contains("error")) return absl::StrCat("error ", e["error"].get<std::string>());
  if (e.value("passed", false)) return "passed";
  return absl::StrCat(e.value("sip_code", 0), " ", e.value("reason", std::string()), " / ",
                      e.value("verstat", std::string()));
}

std::string Got(const Outcome& o) {
  if (!o.ran) return "—";
  if (!o.error.empty()) return absl::StrCat("error ", o.error);
  if (o.passed) return "passed";
  return absl::StrCat(o.sip_code, " ", o.reason, " / ", o.verstat);
}

Json OutcomeJson(const Outcome& o) {
  Json j = {{"ran", o.ran}};
  if (!o.ran) {
    j["skipped"] = o.skip_why;
    return j;
  }
  if (!o.error.empty()) j["error"] = o.error;
  j["passed"] = o.passed;
  j["sip_code"] = o.sip_code;
  j["verstat"] = o.verstat;
  j["reason"] = o.reason;
  j["detail"] = o.detail;
  if (o.header_reasons.size() > 1) j["header_reasons"] = o.header_reasons;
  j["matches_expectation"] = o.mismatch.empty();
  if (!o.mismatch.empty()) j["mismatch"] = o.mismatch;
  return j;
}

bool CaseOk(const CaseResult& r) { return r.status == "pass" || r.status == "xfail"; }

}  // namespace

bool Failed(const Report& report) {
  for (const CaseResult& r : report.cases) {
    if (!CaseOk(r)) return true;
  }
  for (const InteropCount& i : report.interop) {
    if (i.passed != i.total || i.total == 0) return true;
  }
  return false;
}

absl::Status WriteReport(const Report& report, const std::string& dir) {
  // Index cases by requirement.
  std::map<std::string, std::vector<const CaseResult*>> by_req;
  for (const CaseResult& r : report.cases) {
    for (const std::string& q : r.requirements) by_req[q].push_back(&r);
  }
  std::map<std::string, int> kind_total, kind_pass, status_total;
  int daemon_ran = 0, daemon_ok = 0, negatives = 0;
  for (const CaseResult& r : report.cases) {
    ++kind_total[r.kind];
    kind_pass[r.kind] += CaseOk(r);
    ++status_total[r.status];
    negatives += r.kind == "negative";
    if (r.daemon.ran) {
      ++daemon_ran;
      daemon_ok += r.daemon.mismatch.empty();
    }
  }

  // --- report.json ---
  Json j;
  j["generated_at"] = report.generated_at;
  j["seconds"] = report.seconds;
  j["regenerate"] = report.command;
  j["totals"] = {{"cases", report.cases.size()},
                 {"pass", status_total["pass"]},
                 {"fail", status_total["fail"] + status_total["xpass"]},
                 {"expected_fail", status_total["xfail"]},
                 {"negative", negatives},
                 {"by_kind", kind_total},
                 {"daemon_cases_run", daemon_ran},
                 {"daemon_cases_matching", daemon_ok}};
  Json reqs = Json::array();
  std::set<std::string> known;
  for (const Json& q : report.requirements) {
    const std::string id = q.value("id", std::string());
    known.insert(id);
    Json e = q;
    Json cases = Json::array();
    std::string result;
    int fails = 0, xfails = 0;
    for (const CaseResult* r : by_req[id]) {
      cases.push_back({{"id", r->id}, {"status", r->status}});
      fails += !CaseOk(*r);
      xfails += r->status == "xfail";
    }
    const std::string status = q.value("status", std::string());
    if (status == "not-implemented") {
      result = "not implemented";
    } else if (status == "not-applicable") {
      result = "not applicable";
    } else if (by_req[id].empty()) {
      result = "no case";
    } else if (fails > 0) {
      result = "FAIL";
    } else {
      result = xfails > 0 ? absl::StrCat("pass (", xfails, " known bug)") : "pass";
    }
    e["cases"] = cases;
    e["result"] = result;
    reqs.push_back(e);
  }
  j["requirements"] = reqs;
  Json cases = Json::array();
  for (const CaseResult& r : report.cases) {
    Json c = {{"id", r.id},         {"file", r.file},
              {"kind", r.kind},     {"title", r.title},
              {"requirements", r.requirements},
              {"expect", r.expect}, {"status", r.status}};
    if (!r.why.empty()) c["why"] = r.why;
    if (!r.expected_fail.empty()) c["expected_fail"] = r.expected_fail;
    if (!r.failure.empty()) c["failure"] = r.failure;
    if (r.kind == "signer") {
      c["signer"] = {{"ok", r.stir.passed}, {"detail", r.signer_detail}};
    } else {
      c["stir"] = OutcomeJson(r.stir);
      c["daemon"] = OutcomeJson(r.daemon);
      c["secsipidx"] = {{"result", r.peer}, {"note", r.peer_note}};
    }
    for (const std::string& q : r.requirements) {
      if (!known.count(q)) c["unknown_requirement"] = q;
    }
    cases.push_back(c);
  }
  j["cases"] = cases;
  Json interop = Json::array();
  for (const InteropCount& i : report.interop) {
    interop.push_back({{"name", i.name}, {"how", i.how}, {"passed", i.passed},
                       {"total", i.total}, {"failures", i.failures}});
  }
  j["interop"] = interop;
  Json stricter = Json::array(), laxer = Json::array();
  for (const CaseResult& r : report.cases) {
    if (r.peer == "accepted" && r.stir.ran && !r.stir.passed) {
      stricter.push_back({{"case", r.id}, {"shakend", Got(r.stir)}, {"requirements", r.requirements},
                          {"why", r.why.empty() ? r.title : r.why}});
    }
    if (r.peer == "rejected" && r.stir.passed) {
      laxer.push_back({{"case", r.id}, {"secsipidx", r.peer_note}});
    }
  }
  j["shakend_stricter_than_secsipidx"] = stricter;
  j["secsipidx_rejects_what_shakend_accepts"] = laxer;
  {
    std::ofstream f(dir + "/report.json");
    if (!f) return absl::InternalError(absl::StrCat("cannot write ", dir, "/report.json"));
    f << j.dump(1) << "\n";
  }

  // --- REPORT.md ---
  std::string md;
  absl::StrAppend(&md, "# shakend conformance report\n\n",
                  "Generated by `conformance_runner` (conformance/runner.cc) from the cases in "
                  "`conformance/cases/*.json` and the requirements in "
                  "`conformance/requirements.json` (IDs of docs/standards.md). Each case is "
                  "executed through stir's `Verifier` with a real `X5uCertificateSource` fetching "
                  "from an HTTPS server on 127.0.0.1, and, where the case fits the daemon's "
                  "configuration, through shakend's `Verify` RPC. Regenerate: see "
                  "conformance/README.md (`ctest -L conformance` writes it into the build "
                  "directory; the `conformance_report` target refreshes this copy).\n\n",
                  "Run: ", report.generated_at, ", ", absl::StrFormat("%.1f", report.seconds),
                  " s.\n\n## Totals\n\n| | cases | pass | fail | expected fail (known bug) |\n"
                  "|---|---|---|---|---|\n");
  for (const auto& [kind, n] : kind_total) {
    int xf = 0, f = 0;
    for (const CaseResult& r : report.cases) {
      if (r.kind != kind) continue;
      xf += r.status == "xfail";
      f += !CaseOk(r);
    }
    absl::StrAppend(&md, "| ", kind, " | ", n, " | ", kind_pass[kind] - xf, " | ", f, " | ", xf,
                    " |\n");
  }
  absl::StrAppend(&md, "| **all** | **", report.cases.size(), "** | **", status_total["pass"],
                  "** | **", status_total["fail"] + status_total["xpass"], "** | **",
                  status_total["xfail"], "** |\n\n",
                  "Daemon `Verify` RPC: ", daemon_ran, " cases run through the daemon, ", daemon_ok,
                  " with the expected verdict (the others need a configuration the shared daemon "
                  "does not have: lenient policy, CRLs, 1 s fetch timeouts, vector clock, or a PASSporT "
                  "built within 10 s of the 60 s window's edge against its real clock).\n\n");

  absl::StrAppend(&md, "## Interop with secsipidx and OpenSSL\n\n| check | result | how |\n|---|---|---|\n");
  for (const InteropCount& i : report.interop) {
    absl::StrAppend(&md, "| ", Cell(i.name), " | ", i.passed, " / ", i.total, " | ", Cell(i.how),
                    " |\n");
  }
  for (const InteropCount& i : report.interop) {
    for (const std::string& f : i.failures) {
      absl::StrAppend(&md, "\n- ", Cell(i.name), " failure: `", Cell(f), "`");
    }
  }
  absl::StrAppend(&md, "\n\n### Where shakend is stricter than secsipidx\n\n",
                  "Every verification case with one Identity header is also given to "
                  "`secsipidx -check -expire 60 -p <the case's certificate>`. These headers "
                  "shakend rejects and secsipidx accepts (cases about x5u fetching, From/To/Date "
                  "or several headers are not comparable and are left out):\n\n"
                  "| case | shakend | requirements | why shakend rejects |\n|---|---|---|---|\n");
  for (const Json& s : stricter) {
    absl::StrAppend(&md, "| ", s["case"].get<std::string>(), " | ", Cell(s["shakend"]), " | ",
                    absl::StrJoin(s["requirements"].get<std::vector<std::string>>(), ", "), " | ",
                    Cell(s["why"]), " |\n");
  }
  absl::StrAppend(&md, "\nHeaders shakend accepts and secsipidx rejects: ");
  if (laxer.empty()) absl::StrAppend(&md, "none.\n");
  for (const Json& l : laxer) {
    absl::StrAppend(&md, "\n- ", l["case"].get<std::string>(), ": `", Cell(l["secsipidx"]), "`");
  }
  absl::StrAppend(&md, "\n\n## Known stir bugs (expected failures)\n\n");
  bool any_xfail = false;
  for (const CaseResult& r : report.cases) {
    if (r.expected_fail.empty()) continue;
    any_xfail = true;
    absl::StrAppend(&md, "- **", r.id, "** (", r.status, "): ", Cell(r.expected_fail), "\n");
  }
  if (!any_xfail) absl::StrAppend(&md, "None.\n");

  absl::StrAppend(&md, "\n## Requirements\n\n| ID | role | status | result | cases | note |\n"
                       "|---|---|---|---|---|---|\n");
  for (const Json& q : reqs) {
    std::vector<std::string> ids;
    for (const Json& c : q["cases"]) {
      std::string st = c["status"].get<std::string>();
      ids.push_back(st == "pass" ? c["id"].get<std::string>()
                                 : absl::StrCat(c["id"].get<std::string>(), " (", st, ")"));
    }
    absl::StrAppend(&md, "| ", q.value("id", std::string()), " | ", q.value("role", std::string()),
                    " | ", q.value("status", std::string()), " | ", q["result"].get<std::string>(),
                    " | ", ids.empty() ? "—" : absl::StrJoin(ids, ", "), " | ",
                    Cell(q.value("note", std::string())), " |\n");
  }

  absl::StrAppend(&md, "\n## Cases\n\n| case | kind | requirements | expected | stir | daemon | "
                       "secsipidx | result |\n|---|---|---|---|---|---|---|---|\n");
  for (const CaseResult& r : report.cases) {
    std::string expected = r.kind == "signer" ? "check holds" : Expected(r.expect);
    std::string stir = r.kind == "signer" ? (r.stir.passed ? "holds" : "FAILS") : Got(r.stir);
    std::string result = r.status == "pass" ? "pass" : absl::StrCat("**", r.status, "**");
    if (!r.failure.empty()) absl::StrAppend(&result, ": ", r.failure);
    absl::StrAppend(&md, "| ", r.id, " | ", r.kind, " | ", absl::StrJoin(r.requirements, ", "),
                    " | ", Cell(expected), " | ", Cell(stir), " | ",
                    r.daemon.ran ? Cell(Got(r.daemon)) : "—", " | ", r.peer, " | ", Cell(result),
                    " |\n");
  }
  absl::StrAppend(&md, "\nCase titles, reasons and per-path details are in report.json, written next to the "
                       "generated REPORT.md (build/conformance/).\n");
  std::ofstream f(dir + "/REPORT.md");
  if (!f) return absl::InternalError(absl::StrCat("cannot write ", dir, "/REPORT.md"));
  f << md;
  return absl::OkStatus();
}

}  // namespace shaken::conformance
