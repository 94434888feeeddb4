// Private to the mime module: header field values (RFC 2047 words, RFC 2045
// parameters with RFC 2231 continuations) and the Content-* fields of a part.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mxguard/mime/charset.hpp"
#include "mxguard/mime/walker.hpp"

namespace mxguard::mime {

// decode_header_words() with the walker's charset cache, appending to `out`.
void decode_words(std::string_view value, CharsetCache& cache, std::string& out);

struct Param {
  std::string name;   // lower case, without RFC 2231 "*" or "*N" suffixes
  std::string value;  // unquoted; UTF-8 when it came from RFC 2231 form
};

// "token; name=value; ..." as in Content-Type and Content-Disposition.
struct ParsedField {
  std::string token;  // lower case; "" when missing
  std::vector<Param> params;
  const std::string* find(std::string_view name) const;
};
ParsedField parse_field(std::string_view value, CharsetCache& cache);

// The raw values of the Content-* fields of one header section (the first
// occurrence of each).
struct ContentFields {
  std::string type, transfer_encoding, disposition;
  bool has_type = false, has_transfer_encoding = false, has_disposition = false;
};

// Fills the PartInfo fields that come from the header section. `boundary`
// receives the multipart boundary ("" when not multipart).
void fill_part_info(PartInfo& info, const ContentFields& fields, bool digest_child,
                    CharsetCache& cache, std::string& boundary);

}  // namespace mxguard::mime
