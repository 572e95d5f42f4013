// Helpers shared by the pybind11 binding files (never included by the pure C++ kernels).
#ifndef WWM_FAST_CSRC_BIND_UTIL_H_
#define WWM_FAST_CSRC_BIND_UTIL_H_

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdlib>
#include <utility>
#include <vector>

#include "pod_vector.h"

namespace wwm {
namespace py = pybind11;

// Hands a vector's buffer to numpy without copying: the vector moves to the heap and a capsule
// frees it with the array (1-D, C-contiguous).
template <typename T>
py::array_t<T> VectorToArray(std::vector<T>&& v) {
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(heap->size())}, {sizeof(T)}, heap->data(),
                        owner);
}

// Same for a PodVector: numpy takes the malloc'ed buffer and frees it with std::free.
template <typename T>
py::array_t<T> VectorToArray(PodVector<T>&& v) {
  const size_t n = v.size();
  T* data = v.release();
  if (data == nullptr) return py::array_t<T>(0);
  py::capsule owner(data, [](void* p) { std::free(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(n)}, {sizeof(T)}, data, owner);
}

template <typename T>
using CArray = py::array_t<T, py::array::c_style>;

}  // namespace wwm

#endif  // WWM_FAST_CSRC_BIND_UTIL_H_
