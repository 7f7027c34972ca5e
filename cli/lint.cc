#include "cli/lint.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace shaken::cli {

std::string_view LintStatusName(LintStatus s) {
  switch (s) {
    case LintStatus::kPass:
      return "PASS";
    case LintStatus::kFail:
      return "FAIL";
    case LintStatus::kWarn:
      return "WARN";
    case LintStatus::kInfo:
      return "INFO";
  }
  return "?";
}

bool HasFailure(const std::vector<LintRow>& rows) {
  for (const LintRow& r : rows) {
    if (r.status == LintStatus::kFail) return true;
  }
  return false;
}

std::vector<LintRow> LintCertificate(const X509* cert, CertRole role, absl::Time now) {
  const stir::ProfileSubject subject = stir::MakeProfileSubject(cert, role, nullptr, now);
  std::vector<LintRow> rows;
  for (const stir::ProfileRule& rule : stir::ShakenProfileRules()) {
    stir::RuleResult result = rule.check(subject);
    LintStatus status = result.info_only ? LintStatus::kInfo : LintStatus::kPass;
    std::vector<std::string> notes;
    for (const stir::ProfileFinding& f : result.findings) {
      notes.push_back(f.note.empty() ? f.detail : f.note);
      if (f.enforcement != stir::Enforcement::kAdvice) {
        status = LintStatus::kFail;
      } else if (status != LintStatus::kFail) {
        status = LintStatus::kWarn;
      }
    }
    std::string detail = std::move(result.observed);
    if (!notes.empty()) {
      absl::StrAppend(&detail, detail.empty() ? "" : " ", "(", absl::StrJoin(notes, "; "), ")");
    }
    rows.push_back({std::string(rule.id), std::move(result.item), status, std::move(detail)});
  }
  return rows;
}

}  // namespace shaken::cli
