// Bayes tokenizer: a set of 64-bit token hashes (open addressing, linear
// probing). Much cheaper per insert than std::unordered_set, which matters at
// tens of millions of words a second.
#pragma once

#include <cstdint>
#include <vector>

namespace mxguard::bayes {

class TokenSet {
 public:
  // Returns true when `h` was not yet in the set.
  bool insert(uint64_t h) {
    if (h == 0) {  // 0 marks an empty slot, so it lives outside the table
      if (has_zero_) return false;
      has_zero_ = true;
      ++size_;
      return true;
    }
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      if (slots_[i] == h) return false;
      if (slots_[i] == 0) {
        slots_[i] = h;
        ++size_;
        return true;
      }
    }
  }

  bool contains(uint64_t h) const {
    if (h == 0) return has_zero_;
    if (slots_.empty()) return false;
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      if (slots_[i] == h) return true;
      if (slots_[i] == 0) return false;
    }
  }

  size_t size() const { return size_; }

  std::vector<uint64_t> values() const {
    std::vector<uint64_t> out;
    out.reserve(size_);
    if (has_zero_) out.push_back(0);
    for (uint64_t h : slots_)
      if (h != 0) out.push_back(h);
    return out;
  }

 private:
  void grow() {
    std::vector<uint64_t> old = std::move(slots_);
    slots_.assign(old.empty() ? 512 : old.size() * 2, 0);  // 512: a typical message never grows it
    size_t mask = slots_.size() - 1;
    for (uint64_t h : old) {
      if (h == 0) continue;
      size_t i = h & mask;
      while (slots_[i] != 0) i = (i + 1) & mask;
      slots_[i] = h;
    }
  }

  std::vector<uint64_t> slots_;
  size_t size_ = 0;
  bool has_zero_ = false;
};

}  // namespace mxguard::bayes
