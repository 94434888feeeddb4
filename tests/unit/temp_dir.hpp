// A temporary directory for unit tests that need real files (LMDB envs),
// removed with everything in it when the test ends.
#pragma once

#include <doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace mxguard::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mxguard-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace mxguard::testing
