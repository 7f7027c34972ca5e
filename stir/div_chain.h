// div_chain.h: linking the div PASSporTs of a call (RFC 8946 §6; ATIS-1000085) once each
// Identity header has its own verdict. Used by the Verifier; see stir/verifier.h.
#ifndef SHAKEN_STIR_DIV_CHAIN_H_
#define SHAKEN_STIR_DIV_CHAIN_H_

#include <string>
#include <string_view>
#include <vector>

#include "stir/verdict.h"

namespace shaken::stir {

// IsDivIdentity tells whether an Identity header value carries ppt=div (quoted or not). A call
// with such a header is verified as a diverted call (Verifier::Verify); a malformed value is not.
bool IsDivIdentity(std::string_view identity);

// LinkDivChain links the verdicts of a diverted call, in place:
//   1. each div verdict that passed on its own must divert a PASSporT of the call that passed
//      too: its div.tn is among that PASSporT's dest TNs (else 438 div_unlinked) and its orig is
//      that PASSporT's orig (else 438 div_orig_mismatch); div headers that divert each other in
//      a cycle are div_unlinked. A link failure can break a later div, so this repeats until
//      nothing changes.
//   2. a PASSporT that passed must reach the call: its dest is the call's To (`to_tns`, canonical;
//      empty means unchecked), or a div that reaches the call diverts it. Otherwise 438
//      dest_mismatch: the To matches the last div's dest, and the PASSporTs before it by the chain.
//      A div diverts shaken and div PASSporTs only; an rph or rcd one reaches the call beside a
//      shaken or div PASSporT of the chain with its orig and dest.
// Fills each div verdict's `diverts`, and returns one DivResult per div header, in input order.
std::vector<DivResult> LinkDivChain(std::vector<Verdict>& headers,
                                    const std::vector<std::string>& to_tns);

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_DIV_CHAIN_H_
