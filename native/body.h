// Outbound request body queue for one stream. JavaScript appends bytes; nghttp2's data
// provider drains them into DATA frames. An empty queue that is not yet ended makes the
// provider return NGHTTP2_ERR_DEFERRED, and the next write resumes the stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace cic {

class BodyQueue {
 public:
  void Append(const uint8_t* data, size_t len) {
    if (len == 0) return;
    // Compact once the consumed prefix dominates, so a long stream does not keep growing.
    if (head_ > 0 && head_ >= buf_.size() / 2) {
      buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    buf_.insert(buf_.end(), data, data + len);
  }

  size_t Read(uint8_t* out, size_t max) {
    size_t n = Buffered();
    if (n > max) n = max;
    if (n > 0) {
      std::memcpy(out, buf_.data() + head_, n);
      head_ += n;
      if (head_ == buf_.size()) {
        buf_.clear();
        head_ = 0;
      }
    }
    return n;
  }

  size_t Buffered() const { return buf_.size() - head_; }

 private:
  std::vector<uint8_t> buf_;
  size_t head_ = 0;
};

}  // namespace cic
