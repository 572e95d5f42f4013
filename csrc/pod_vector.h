// A growable array of trivially copyable values backed by malloc/realloc.
//
// Purpose: kernel outputs that are handed to numpy without a copy. Unlike std::vector it can grow
//   without value-initialising (resize_uninitialized); buffers of 2 MB and more are 2 MB-aligned and
//   advised for transparent huge pages (far fewer page faults when they are filled). release()
//   passes ownership to the caller, who must std::free() the pointer (the bindings do so from a
//   numpy capsule).
// Complexity: amortised O(1) push_back.
#ifndef WWM_FAST_CSRC_POD_VECTOR_H_
#define WWM_FAST_CSRC_POD_VECTOR_H_

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace wwm {

template <typename T>
class PodVector {
  static_assert(std::is_trivially_copyable<T>::value, "PodVector holds trivially copyable types");

 public:
  PodVector() = default;
  PodVector(const PodVector&) = delete;
  PodVector& operator=(const PodVector&) = delete;
  PodVector(PodVector&& o) noexcept { swap(o); }
  PodVector& operator=(PodVector&& o) noexcept {
    PodVector tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  ~PodVector() { std::free(data_); }

  void swap(PodVector& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(cap_, o.cap_);
  }
  void reserve(size_t n) {
    if (n <= cap_) return;
    if (n > (SIZE_MAX - kHugeBytes) / sizeof(T)) throw std::bad_alloc();  // bytes must not wrap
    const size_t bytes = (n ? n : 1) * sizeof(T);
    if (bytes >= kHugeBytes) {
      // Large outputs (tens of MB per shard): 2 MB-aligned memory the kernel may back with
      // transparent huge pages, so filling it takes a few faults instead of one per 4 KB page.
      void* p = nullptr;
      const size_t rounded = (bytes + kHugeBytes - 1) / kHugeBytes * kHugeBytes;
      if (posix_memalign(&p, kHugeBytes, rounded) != 0) throw std::bad_alloc();
#if defined(MADV_HUGEPAGE)
      madvise(p, rounded, MADV_HUGEPAGE);
#endif
      if (size_) std::memcpy(p, data_, size_ * sizeof(T));
      std::free(data_);
      data_ = static_cast<T*>(p);
      cap_ = rounded / sizeof(T);
      return;
    }
    T* p = static_cast<T*>(std::realloc(data_, bytes));
    if (p == nullptr) throw std::bad_alloc();
    data_ = p;
    cap_ = n;
  }
  void push_back(T v) {
    if (size_ == cap_) reserve(cap_ < 32 ? 64 : cap_ * 2);
    data_[size_++] = v;
  }
  void resize_uninitialized(size_t n) {
    reserve(n);
    size_ = n;
  }
  void resize(size_t n, T value) {
    reserve(n);
    for (size_t i = size_; i < n; ++i) data_[i] = value;
    size_ = n;
  }
  void clear() { size_ = 0; }
  // Gives up the buffer (to be released with std::free); the vector becomes empty.
  T* release() {
    T* p = data_;
    data_ = nullptr;
    size_ = cap_ = 0;
    return p;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  T& back() { return data_[size_ - 1]; }

 private:
  static constexpr size_t kHugeBytes = size_t{2} << 20;
  T* data_ = nullptr;
  size_t size_ = 0;
  size_t cap_ = 0;
};

}  // namespace wwm

#endif  // WWM_FAST_CSRC_POD_VECTOR_H_
