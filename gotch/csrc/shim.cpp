// shim.cpp: handles, errors, data transfer, generators and global state.
#include "shim.h"

#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <ATen/core/Generator.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h> // not included by ATen/ATen.h since 2.0
#include <c10/util/Logging.h>

#include <cstdlib>
#include <cstring>
#include <functional>

namespace gt {

std::atomic<int64_t> live_handles{0};

// Every c10::Error captures and (before torch 2.4) symbolizes a C++
// backtrace when it is thrown: about 5 ms per failing op. Errors cross the
// C ABI without it (what_without_backtrace), so capture none at all.
[[maybe_unused]] static const bool no_backtraces = [] {
  c10::SetStackTraceFetcher(std::function<std::string()>([] { return std::string(); }));
  return true;
}();

gt_error make_error(int32_t code, const char *msg) {
  // The message lives right after the struct, in the same allocation, so
  // gt_error_free is one free. When even that fails, the caller still sees
  // a failure: a static error (which gt_error_free knows not to free).
  static gt_error_s no_memory{GT_ERR_OUT_OF_MEMORY, "out of host memory for an error message"};
  size_t n = std::strlen(msg);
  auto *e = static_cast<gt_error_s *>(std::malloc(sizeof(gt_error_s) + n + 1));
  if (e == nullptr) return &no_memory;
  char *text = reinterpret_cast<char *>(e + 1);
  std::memcpy(text, msg, n + 1);
  e->code = code;
  e->message = text;
  return e;
}

const at::Tensor &arg(gt_tensor h, const char *name) {
  TORCH_CHECK(h != nullptr, "argument '", name, "' is a nil or freed tensor");
  return h->t;
}

c10::optional<at::Tensor> opt(gt_tensor h) {
  if (h == nullptr) return c10::nullopt;
  return h->t;
}

std::vector<at::Tensor> list(const gt_tensor *hs, int32_t n, const char *name) {
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (int32_t i = 0; i < n; i++) {
    TORCH_CHECK(hs[i] != nullptr, "argument '", name, "[", i,
                "]' is a nil or freed tensor");
    v.push_back(hs[i]->t);
  }
  return v;
}

c10::List<c10::optional<at::Tensor>> opt_list(const gt_tensor *hs, int32_t n) {
  c10::List<c10::optional<at::Tensor>> l;
  l.reserve(n);
  for (int32_t i = 0; i < n; i++) {
    if (hs[i] == nullptr)
      l.push_back(c10::nullopt);
    else
      l.push_back(c10::optional<at::Tensor>(hs[i]->t));
  }
  return l;
}

at::Generator &generator(gt_generator h, const char *name) {
  TORCH_CHECK(h != nullptr, "argument '", name, "' is a nil or freed generator");
  return h->g;
}

at::ScalarType scalar_type(int32_t dtype) {
  switch (dtype) {
    case GT_FLOAT32: return at::kFloat;
    case GT_FLOAT64: return at::kDouble;
    case GT_FLOAT16: return at::kHalf;
    case GT_BFLOAT16: return at::kBFloat16;
    case GT_INT64: return at::kLong;
    case GT_INT32: return at::kInt;
    case GT_UINT8: return at::kByte;
    case GT_BOOL: return at::kBool;
  }
  TORCH_CHECK(false, "unknown dtype code ", dtype);
}

int32_t dtype_code(at::ScalarType st) {
  switch (st) {
    case at::kFloat: return GT_FLOAT32;
    case at::kDouble: return GT_FLOAT64;
    case at::kHalf: return GT_FLOAT16;
    case at::kBFloat16: return GT_BFLOAT16;
    case at::kLong: return GT_INT64;
    case at::kInt: return GT_INT32;
    case at::kByte: return GT_UINT8;
    case at::kBool: return GT_BOOL;
    default: break;
  }
  TORCH_CHECK(false, "result dtype ", st, " is not supported by golens");
}

at::Device device(int32_t type, int32_t index) {
  switch (type) {
    case GT_CPU: return at::Device(at::kCPU);
    case GT_CUDA: {
      // Checked here, so the error says what is wrong instead of listing
      // every backend ATen's dispatcher knows.
      TORCH_CHECK(at::hasCUDA(), "CUDA is not available: this libtorch (",
                  TORCH_VERSION, ") has no CUDA support or sees no GPU");
      int n = at::detail::getCUDAHooks().getNumGPUs();
      TORCH_CHECK(index >= 0 && index < n, "no CUDA device ", index, ": ", n, " visible");
      return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
    }
    case GT_MPS:
      TORCH_CHECK(at::hasMPS(), "device mps is not available: it needs macOS and a torch built with MPS");
      return at::Device(at::kMPS);
  }
  TORCH_CHECK(false, "unknown device type code ", type);
}

static int32_t device_code(const at::Device &d) {
  if (d.is_cpu()) return GT_CPU;
  if (d.is_cuda()) return GT_CUDA;
  if (d.is_mps()) return GT_MPS;
  TORCH_CHECK(false, "device ", d, " is not supported by golens");
}

void describe(gt_out *out, const at::Tensor &t) {
  std::memset(out, 0, sizeof *out);
  if (!t.defined()) return;
  TORCH_CHECK(t.dim() <= GT_MAX_DIMS, "result has ", t.dim(),
              " dimensions; golens supports at most ", GT_MAX_DIMS);
  out->dtype = dtype_code(t.scalar_type());
  out->device_type = device_code(t.device());
  out->device_index = t.device().has_index() ? t.device().index() : -1;
  out->ndim = static_cast<int32_t>(t.dim());
  out->requires_grad = t.requires_grad() ? 1 : 0;
  for (int64_t i = 0; i < t.dim(); i++) out->shape[i] = t.size(i);
}

static gt_tensor new_handle(at::Tensor t) {
  live_handles.fetch_add(1, std::memory_order_relaxed);
  return new gt_tensor_s{std::move(t)};
}

void fill(gt_out *out, at::Tensor t) {
  describe(out, t);
  if (t.defined()) out->tensor = new_handle(std::move(t));
}

void fill_all(gt_out *outs, std::vector<at::Tensor> ts) {
  for (size_t i = 0; i < ts.size(); i++) describe(&outs[i], ts[i]);
  for (size_t i = 0; i < ts.size(); i++)
    if (ts[i].defined()) outs[i].tensor = new_handle(std::move(ts[i]));
}

void fill_list(gt_out **outs, int32_t *n, std::vector<at::Tensor> ts) {
  *outs = nullptr;
  *n = 0;
  if (ts.empty()) return;
  // The count is taken before ts is moved away.
  const auto count = static_cast<int32_t>(ts.size());
  auto *arr = static_cast<gt_out *>(std::calloc(ts.size(), sizeof(gt_out)));
  TORCH_CHECK(arr != nullptr, "out of host memory for ", ts.size(), " results");
  try {
    fill_all(arr, std::move(ts));
  } catch (...) {
    std::free(arr);
    throw;
  }
  *outs = arr;
  *n = count;
}

}  // namespace gt

extern "C" {

int32_t gt_abi_version(void) { return GT_ABI_VERSION; }

const char *gt_torch_version(void) { return TORCH_VERSION; }

void gt_error_free(gt_error err) {
  if (err != nullptr && err->message != reinterpret_cast<const char *>(err + 1)) return;  // the static one
  std::free(err);
}

int64_t gt_live_handles(void) { return gt::live_handles.load(); }

void gt_tensor_free(gt_tensor t) {
  if (t == nullptr) return;
  delete t;
  gt::live_handles.fetch_sub(1, std::memory_order_relaxed);
}

gt_error gt_tensor_info(gt_out *out, gt_tensor t) {
  GT_TRY({
    gt::describe(out, gt::arg(t, "tensor"));
    out->tensor = t;
  })
}

gt_error gt_tensor_version(gt_tensor t, int64_t *out) {
  GT_TRY({ *out = gt::arg(t, "tensor")._version(); })
}

gt_error gt_tensor_strides(gt_tensor t, int64_t *out, int32_t ndim) {
  GT_TRY({
    const at::Tensor &x = gt::arg(t, "tensor");
    TORCH_CHECK(ndim == x.dim(), "a rank-", x.dim(), " tensor's strides asked for ", ndim, " dims");
    for (int32_t i = 0; i < ndim; i++) out[i] = x.stride(i);
  })
}

gt_error gt_from_data(gt_out *out, const void *data, const int64_t *shape,
                      int32_t ndim, int32_t dtype, int32_t device_type,
                      int32_t device_index) {
  return gt_from_data_as(out, data, shape, ndim, dtype, dtype, device_type, device_index);
}

gt_error gt_from_data_as(gt_out *out, const void *data, const int64_t *shape,
                         int32_t ndim, int32_t src_dtype, int32_t dtype,
                         int32_t device_type, int32_t device_index) {
  GT_TRY({
    TORCH_CHECK(ndim >= 0 && ndim <= GT_MAX_DIMS, "rank ", ndim,
                " is out of range [0, ", GT_MAX_DIMS, "]");
    for (int32_t i = 0; i < ndim; i++)
      TORCH_CHECK(shape[i] >= 0, "dimension ", i, " has negative size ", shape[i]);
    at::Device dev = gt::device(device_type, device_index);
    at::IntArrayRef sizes(shape, ndim);
    auto want = at::TensorOptions().dtype(gt::scalar_type(dtype)).device(dev);
    if (c10::multiply_integers(sizes) == 0) {
      gt::fill(out, at::empty(sizes, want));
    } else {
      // A view of the caller's bytes, copied (and converted) straight into
      // the result on dev: nothing else is allocated on the host.
      at::Tensor src = at::from_blob(const_cast<void *>(data), sizes,
                                     at::TensorOptions().dtype(gt::scalar_type(src_dtype)));
      gt::fill(out, src.to(dev, gt::scalar_type(dtype), /*non_blocking=*/false, /*copy=*/true));
    }
  })
}

gt_error gt_copy_to(gt_tensor t, void *dst, int64_t nbytes, int32_t dtype) {
  GT_TRY({
    at::Tensor src = gt::arg(t, "tensor").detach();
    // Straight into dst, converting on the way: no temporary the size of t
    // (a 4.7 GB float64 copy of a 2.4 GB weight was two).
    at::Tensor out = at::from_blob(dst, src.sizes(),
                                   at::TensorOptions().dtype(gt::scalar_type(dtype)));
    TORCH_CHECK(static_cast<int64_t>(out.nbytes()) == nbytes, "destination holds ",
                nbytes, " bytes but the tensor ", src.sizes(), " needs ", out.nbytes());
    if (nbytes > 0) out.copy_(src);
  })
}

gt_error gt_generator_new(gt_generator *out, uint64_t seed) {
  GT_TRY({
    *out = new gt_generator_s{at::detail::createCPUGenerator(seed)};
    gt::live_handles.fetch_add(1, std::memory_order_relaxed);
  })
}

void gt_generator_free(gt_generator g) {
  if (g == nullptr) return;
  delete g;
  gt::live_handles.fetch_sub(1, std::memory_order_relaxed);
}

gt_error gt_manual_seed(uint64_t seed) { GT_TRY(at::manual_seed(seed)) }

int32_t gt_set_grad_enabled(int32_t enabled) {
  bool prev = at::GradMode::is_enabled();
  at::GradMode::set_enabled(enabled != 0);
  return prev ? 1 : 0;
}

int32_t gt_is_grad_enabled(void) { return at::GradMode::is_enabled() ? 1 : 0; }

gt_error gt_set_num_threads(int32_t n) {
  GT_TRY({
    TORCH_CHECK(n >= 1, "thread count must be >= 1, got ", n);
    at::set_num_threads(n);
    gt::wanted_threads.store(n, std::memory_order_relaxed);
    gt::threads_generation.fetch_add(1, std::memory_order_release);
  })
}

int32_t gt_get_num_threads(void) { return at::get_num_threads(); }

void gt_prepare_thread(void) {
  try {
    gt::sync_threads();
  } catch (...) {  // a count the shim already accepted; nothing to report
  }
}

int32_t gt_has_device(int32_t device_type) {
  try {
    switch (device_type) {
      case GT_CPU: return 1;
      case GT_CUDA: return at::hasCUDA() ? 1 : 0;
      case GT_MPS: return at::hasMPS() ? 1 : 0;
    }
  } catch (...) {
  }
  return 0;
}

const char *gt_build_info(void) {
  static const std::string info = at::show_config();
  return info.c_str();
}

// Before 2.0, ATen's scaled-dot-product attention is the unfused math path.
int32_t gt_has_fused_attention(void) { return GT_TORCH_AT_LEAST(2, 0) ? 1 : 0; }

}  // extern "C"
