#include "stir/div_chain.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "stir/absl_compat.h"
#include "stir/identity_header.h"
#include "stir/passport.h"

namespace shaken::stir {
namespace {

bool Contains(const std::vector<std::string>& v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

bool SameTnSet(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (const auto& x : a) {
    if (!Contains(b, x)) return false;
  }
  for (const auto& x : b) {
    if (!Contains(a, x)) return false;
  }
  return true;
}

bool Counted(const Verdict& v) { return !v.ppt_not_supported; }
bool IsDiv(const Verdict& v) { return Counted(v) && v.ppt == kPptDiv; }
// A div diverts a call's shaken or div PASSporT; rph and rcd ones travel beside them.
bool Divertable(const Verdict& v) {
  return Counted(v) && (v.ppt == kPptShaken || v.ppt == kPptDiv);
}

// Link finds the PASSporT that div verdict `i` diverts, or fails `i` with why not. Returns
// whether `i`'s verdict changed.
bool Link(std::vector<Verdict>& h, size_t i) {
  Verdict& d = h[i];
  if (d.div_tn.empty()) {
    d.SetReason(Reason::kDivUnlinked,
                "the div claim holds a uri; shakend links div PASSporTs by TN (div.tn)");
    return true;
  }
  std::optional<size_t> same_dest;
  for (size_t j = 0; j < h.size(); ++j) {
    if (j == i || !h[j].passed || !Divertable(h[j]) || !Contains(h[j].dest_tns, d.div_tn)) continue;
    if (h[j].orig_tn == d.orig_tn) {
      d.diverts = j;
      return false;
    }
    if (!same_dest) same_dest = j;
  }
  d.diverts.reset();
  if (same_dest.has_value()) {
    d.SetReason(Reason::kDivOrigMismatch,
                absl::StrCat("orig.tn ", d.orig_tn.substr(0, 32), " differs from orig.tn ",
                             h[*same_dest].orig_tn.substr(0, 32), " of Identity header #",
                             *same_dest + 1, ", whose dest it diverts (RFC 8946: orig is "
                             "copied from the diverted PASSporT)"));
  } else {
    d.SetReason(Reason::kDivUnlinked,
                absl::StrCat("div.tn ", d.div_tn.substr(0, 32), " is the dest of no verified "
                             "PASSporT of the call (RFC 8946: div is the diverted PASSporT's dest)"));
  }
  return true;
}

// InCycle tells whether following `diverts` from div `i` comes back to `i`.
bool InCycle(const std::vector<Verdict>& h, size_t i) {
  std::optional<size_t> at = h[i].diverts;
  for (size_t steps = 0; at.has_value() && steps < h.size(); ++steps) {
    if (*at == i) return true;
    if (!IsDiv(h[*at]) || !h[*at].passed) return false;
    at = h[*at].diverts;
  }
  return false;
}

}  // namespace

bool IsDivIdentity(std::string_view identity) {
  absl::StatusOr<IdentityHeader> h = ParseIdentityHeader(identity);
  return h.ok() && h->ppt.has_value() && *h->ppt == kPptDiv;
}

std::vector<DivResult> LinkDivChain(std::vector<Verdict>& h,
                                    const std::vector<std::string>& to_tns) {
  // 1. Links, to a fixed point: failures only ever turn a passed verdict into a failed one.
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < h.size(); ++i) {
      if (IsDiv(h[i]) && h[i].passed && Link(h, i)) changed = true;
    }
    for (size_t i = 0; i < h.size(); ++i) {
      if (IsDiv(h[i]) && h[i].passed && InCycle(h, i)) {
        h[i].diverts.reset();
        h[i].SetReason(Reason::kDivUnlinked,
                       "the div PASSporTs of the call divert each other in a cycle");
        changed = true;
      }
    }
  }
  // 2. Reaching the call: from the PASSporTs whose dest is the To, back along the links.
  std::vector<bool> reaches(h.size(), false);
  std::vector<size_t> todo;
  for (size_t i = 0; i < h.size(); ++i) {
    if (h[i].passed && Counted(h[i]) && (to_tns.empty() || SameTnSet(h[i].dest_tns, to_tns))) {
      reaches[i] = true;
      todo.push_back(i);
    }
  }
  while (!todo.empty()) {
    const size_t i = todo.back();
    todo.pop_back();
    if (IsDiv(h[i]) && h[i].diverts.has_value() && !reaches[*h[i].diverts]) {
      reaches[*h[i].diverts] = true;
      todo.push_back(*h[i].diverts);
    }
  }
  // An rph or rcd PASSporT signed for the call before it was diverted reaches the call with the
  // PASSporT it travels beside: one of the chain with the same orig and dest.
  for (size_t i = 0; i < h.size(); ++i) {
    if (reaches[i] || !h[i].passed || !Counted(h[i]) || Divertable(h[i])) continue;
    for (size_t j = 0; j < h.size() && !reaches[i]; ++j) {
      reaches[i] = reaches[j] && Divertable(h[j]) && h[j].orig_tn == h[i].orig_tn &&
                   SameTnSet(h[j].dest_tns, h[i].dest_tns);
    }
  }
  for (size_t i = 0; i < h.size(); ++i) {
    if (h[i].passed && Counted(h[i]) && !reaches[i]) {
      h[i].SetReason(Reason::kDestMismatch,
                     "dest.tn is neither the called number nor diverted by a verified div "
                     "PASSporT of the call (RFC 8946)");
    }
  }
  std::vector<DivResult> out;
  for (size_t i = 0; i < h.size(); ++i) {
    if (!IsDiv(h[i])) continue;
    if (!h[i].passed) h[i].diverts.reset();
    DivResult& r = out.emplace_back();
    r.header = i;
    r.div_tn = h[i].div_tn;
    r.diverts = h[i].diverts;
    r.passed = h[i].passed;
    r.reason = h[i].reason;
    r.verstat = h[i].verstat;
    r.detail = h[i].detail;
  }
  return out;
}

}  // namespace shaken::stir
