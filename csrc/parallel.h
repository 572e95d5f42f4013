// ParallelFor: the one way the kernels start threads.
//
// Purpose: run parts 0..n-1 of a kernel, part 0 on the calling thread (which has released the
//   GIL) and the others on new threads, so that a failure can never take the process down:
//   * a thread that cannot be started (std::system_error: thread limit, memory) runs its part on
//     the calling thread instead -- the output never depends on how many threads ran;
//   * an exception in any part is caught there and rethrown on the calling thread after every
//     thread has been joined (the first failing part in index order wins, which is the error a
//     serial loop over the parts would raise).
// Thread-count policy (the same in every kernel and in wwm_fast/_threads.py, which reads
//   kMaxThreads from the native modules): num_threads <= 0 means every core, and any request is
//   capped at kMaxThreads. Kernels then use fewer when the input is too small to share.
// Example: ParallelFor(ResolveNumThreads(num_threads), [&](int t) { Work(begin(t), end(t)); });
#ifndef WWM_FAST_CSRC_PARALLEL_H_
#define WWM_FAST_CSRC_PARALLEL_H_

#include <algorithm>
#include <exception>
#include <system_error>
#include <thread>
#include <vector>

namespace wwm {

constexpr int kMaxThreads = 256;

// num_threads <= 0: every core (hardware_concurrency); otherwise num_threads; at most kMaxThreads.
inline int ResolveNumThreads(int num_threads) {
  if (num_threads > 0) return std::min(num_threads, kMaxThreads);
  const unsigned hc = std::thread::hardware_concurrency();
  return static_cast<int>(std::max(1u, std::min(hc, static_cast<unsigned>(kMaxThreads))));
}

template <typename Fn>
void ParallelFor(int n, Fn&& fn) {
  if (n <= 0) return;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
  auto run = [&fn, &errors](int t) {
    try {
      fn(t);
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  std::vector<int> on_caller;
  pool.reserve(static_cast<size_t>(n - 1));
  for (int t = 1; t < n; ++t) {
    try {
      pool.emplace_back(run, t);
    } catch (const std::system_error&) {
      on_caller.push_back(t);
    }
  }
  run(0);
  for (int t : on_caller) run(t);
  for (std::thread& th : pool) th.join();
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace wwm

#endif  // WWM_FAST_CSRC_PARALLEL_H_
