// shim.h: helpers shared by the shim's C++ files. Never crosses the C ABI.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "golens_torch.h"
#include "golens_torch_ext.h"  // struct gt_tensor_s, shared with extensions

#define GT_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||     \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

struct gt_generator_s {
  at::Generator g;
};

namespace gt {

extern std::atomic<int64_t> live_handles;

// An error of the given gt_error_code with a copy of msg, for the caller
// to free with gt_error_free.
gt_error make_error(int32_t code, const char *msg);

// Thrown where a failure has a kind of its own (no such device, not
// compiled), so GT_TRY hands its code to the caller.
struct coded_error : std::runtime_error {
  int32_t code;
  coded_error(int32_t c, const std::string &msg) : std::runtime_error(msg), code(c) {}
};

// The tensor behind a handle; throws naming the argument when it is NULL.
const at::Tensor &arg(gt_tensor h, const char *name);
// An optional tensor: NULL means absent.
c10::optional<at::Tensor> opt(gt_tensor h);
std::vector<at::Tensor> list(const gt_tensor *hs, int32_t n, const char *name);
// A list whose NULL entries are absent (torch's None), as at::index_put takes.
c10::List<c10::optional<at::Tensor>> opt_list(const gt_tensor *hs, int32_t n);
at::Generator &generator(gt_generator h, const char *name);

at::ScalarType scalar_type(int32_t dtype);
int32_t dtype_code(at::ScalarType st);
at::Device device(int32_t type, int32_t index);

// Fills out with t's metadata, checking everything before allocating.
void describe(gt_out *out, const at::Tensor &t);
// Moves t into a new handle described by out.
void fill(gt_out *out, at::Tensor t);
// Fills n outs; allocates only after every tensor passed the checks.
void fill_all(gt_out *outs, std::vector<at::Tensor> ts);
// A malloc'ed array of outs for a tensor list; the caller frees it with free.
void fill_list(gt_out **outs, int32_t *n, std::vector<at::Tensor> ts);

// ---- helpers the ops table (gotch/ops.txt) calls, in ops_helpers.cpp
inline at::TensorOptions options(at::ScalarType dtype, at::Device dev) {
  return at::TensorOptions().dtype(dtype).device(dev);
}
// A number from Go: integral values become integer scalars, so an integer
// tensor stays an integer tensor, as in Python.
at::Scalar scalar(double v);
at::Tensor multinomial(const at::Tensor &probs, int64_t n, bool replacement,
                       at::Generator &gen);
// at::linear, through a matrix-vector product for one row on the CPU.
at::Tensor linear(const at::Tensor &x, const at::Tensor &w, const c10::optional<at::Tensor> &b);
at::Tensor sdpa(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v,
                const c10::optional<at::Tensor> &mask, bool causal);
std::tuple<at::Tensor, at::Tensor> eigvals(const at::Tensor &self);
void zero_grad(const at::Tensor &self);

// libtorch keeps the intra-op thread count per OS thread (OpenMP's), and
// Go runs a goroutine's calls on whichever OS thread it has at the time: a
// thread that had never been given the count ran ops with OpenMP's default
// (every CPU) beside OpenBLAS's own threads, slower and summing in another
// order. So every entry first gives its thread the count last set through
// gt_set_num_threads; the check is one thread-local load.
extern std::atomic<int32_t> wanted_threads;     // 0: never set
extern std::atomic<int32_t> threads_generation;  // bumped by each set
inline void sync_threads() {
  thread_local int32_t seen = 0;
  int32_t g = threads_generation.load(std::memory_order_acquire);
  if (g != seen) {
    seen = g;
    int32_t n = wanted_threads.load(std::memory_order_relaxed);
    if (n > 0 && at::get_num_threads() != n) at::set_num_threads(n);
  }
}

}  // namespace gt

// Wraps the body of every extern "C" entry that can fail: any exception
// becomes the returned gt_error, so nothing C++ reaches the caller.
#define GT_TRY(body)                                                          \
  try {                                                                       \
    gt::sync_threads();                                                       \
    body;                                                                     \
    return nullptr;                                                           \
  } catch (const gt::coded_error &e) {                                        \
    return gt::make_error(e.code, e.what());                                  \
  } catch (const c10::OutOfMemoryError &e) {                                  \
    return gt::make_error(GT_ERR_OUT_OF_MEMORY, e.what_without_backtrace());  \
  } catch (const c10::Error &e) {                                             \
    return gt::make_error(GT_ERR_TORCH, e.what_without_backtrace());          \
  } catch (const std::bad_alloc &) {                                          \
    return gt::make_error(GT_ERR_OUT_OF_MEMORY, "out of host memory");        \
  } catch (const std::exception &e) {                                         \
    return gt::make_error(GT_ERR_INTERNAL, e.what());                         \
  } catch (...) {                                                             \
    return gt::make_error(GT_ERR_INTERNAL, "unknown C++ exception in libtorch"); \
  }
