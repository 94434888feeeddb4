// Private to the mime module: lists the members of a ZIP, gzip or ustar leaf
// from the archive's own directory structures while its decoded bytes stream
// past. Nothing is decompressed; memory stays bounded whatever the input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/mime/charset.hpp"
#include "mxguard/mime/walker.hpp"

namespace mxguard::mime {

class ArchiveLister {
 public:
  // ZIP local headers and the gzip name are read from the first kHead bytes;
  // the ZIP end record and central directory from the last kTail or more.
  static constexpr size_t kHead = 64u << 10;
  static constexpr size_t kTail = 64u << 10;

  void start(const Limits& limits);
  void feed(std::string_view decoded);
  // Appends the members to `out`. `detected_type` is the sniffed type of the
  // leaf: documents that happen to be ZIP files (OOXML, ODF, JAR) are not listed.
  void finish(std::string_view detected_type, CharsetCache& cache, std::vector<ArchiveMember>& out);

 private:
  enum class Mode : uint8_t { kUndecided, kZip, kGzip, kTar, kOff };
  enum class Capture : uint8_t { kNone, kLongName, kPax };

  struct Raw {
    std::string name;
    bool utf8 = false;  // zip: the entry says its name is UTF-8
    bool encrypted = false;
  };

  void classify();
  void list_zip();
  void zip_central(std::string_view cd);
  void zip_local(std::string_view head);
  void add(std::string_view name, bool utf8, bool encrypted);
  void list_gzip();
  void tar_consume(std::string_view d, uint64_t at);
  void tar_header(std::string_view h);

  unsigned max_members_ = 0;
  size_t max_name_ = 0;
  Mode mode_ = Mode::kOff;
  uint64_t total_ = 0;
  std::string head_, tail_;
  std::vector<Raw> raw_;

  // tar: the next header's offset, the header being gathered, and the data
  // of a GNU long-name or pax entry that names the following member.
  uint64_t tar_next_ = 0;
  bool tar_done_ = false;
  std::string tar_hdr_;
  Capture capture_ = Capture::kNone;
  uint64_t capture_left_ = 0;
  std::string captured_;
  std::string pending_name_;
};

}  // namespace mxguard::mime
