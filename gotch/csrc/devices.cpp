// devices.cpp: CUDA and MPS specifics. Without GT_WITH_CUDA (the build tag
// cuda sets it) and off macOS, every fallible entry answers with a
// GT_ERR_NOT_COMPILED error, which the Go side maps to a sentinel.
#include "shim.h"

#include <ATen/detail/CUDAHooksInterface.h>

#ifdef GT_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/core/DeviceGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#endif

#if defined(__APPLE__) && GT_TORCH_AT_LEAST(2, 1)
#include <ATen/detail/MPSHooksInterface.h>
#define GT_WITH_MPS 1
#endif

#define GT_NOT_COMPILED(what)                \
  return gt::make_error(GT_ERR_NOT_COMPILED, \
                        "not compiled: this golens shim was built without " what)

#ifdef GT_WITH_CUDA
static void check_cuda_device(int32_t device) {
  int32_t n = static_cast<int32_t>(c10::cuda::device_count());
  if (device < 0 || device >= n)
    throw gt::coded_error(GT_ERR_NO_DEVICE, "no CUDA device " + std::to_string(device) +
                                                ": " + std::to_string(n) + " visible");
}

// The CUDA runtime's few functions the shim calls, found in the process
// when first needed (libtorch_cuda has loaded libcudart) instead of linked:
// pip's CUDA wheels ship only a versioned libcudart.so.N, which -lcudart
// cannot name. (So the device guard is c10's generic one: CUDAGuard's
// inline code calls the CUDA runtime by name.) The names go through the
// header's macros, so CUDA 12's cudaGetDeviceProperties is its
// cudaGetDeviceProperties_v2.
#define GT_STR(x) #x
#define GT_XSTR(x) GT_STR(x)
namespace {
struct cudart_fns {
  decltype(&::cudaGetErrorString) error_string;
  decltype(&::cudaGetDeviceProperties) device_properties;
  decltype(&::cudaDeviceSynchronize) device_synchronize;
  decltype(&::cudaEventCreate) event_create;
  decltype(&::cudaEventRecord) event_record;
  decltype(&::cudaEventSynchronize) event_synchronize;
  decltype(&::cudaEventElapsedTime) event_elapsed_time;
  decltype(&::cudaEventDestroy) event_destroy;
};
template <class F>
void resolve(F &fn, const char *name) {
  void *p = dlsym(RTLD_DEFAULT, name);
  TORCH_CHECK(p != nullptr, "the CUDA runtime in this process has no ", name);
  fn = reinterpret_cast<F>(p);
}
const cudart_fns &cudart() {
  static const cudart_fns fns = [] {
    cudart_fns f{};
    resolve(f.error_string, GT_XSTR(cudaGetErrorString));
    resolve(f.device_properties, GT_XSTR(cudaGetDeviceProperties));
    resolve(f.device_synchronize, GT_XSTR(cudaDeviceSynchronize));
    resolve(f.event_create, GT_XSTR(cudaEventCreate));
    resolve(f.event_record, GT_XSTR(cudaEventRecord));
    resolve(f.event_synchronize, GT_XSTR(cudaEventSynchronize));
    resolve(f.event_elapsed_time, GT_XSTR(cudaEventElapsedTime));
    resolve(f.event_destroy, GT_XSTR(cudaEventDestroy));
    return f;
  }();
  return fns;
}
}  // namespace

#define GT_CUDA_CHECK(expr)                                                \
  do {                                                                     \
    cudaError_t e_ = (expr);                                               \
    TORCH_CHECK(e_ == cudaSuccess, #expr, ": ", cudart().error_string(e_)); \
  } while (0)
#endif

extern "C" {

int32_t gt_cuda_device_count(void) {
  try {
    return at::hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0;
  } catch (...) {
    return 0;
  }
}

gt_error gt_cuda_device_properties(int32_t device, char *buf, int32_t len,
                                   int32_t *major, int32_t *minor,
                                   int64_t *total_bytes) {
#ifdef GT_WITH_CUDA
  GT_TRY({
    check_cuda_device(device);
    cudaDeviceProp p;
    GT_CUDA_CHECK(cudart().device_properties(&p, device));
    std::snprintf(buf, static_cast<size_t>(len), "%s", p.name);
    *major = p.major;
    *minor = p.minor;
    *total_bytes = static_cast<int64_t>(p.totalGlobalMem);
  })
#else
  (void)device, (void)buf, (void)len, (void)major, (void)minor, (void)total_bytes;
  GT_NOT_COMPILED("CUDA");
#endif
}

gt_error gt_cuda_synchronize(int32_t device) {
#ifdef GT_WITH_CUDA
  GT_TRY({
    check_cuda_device(device);
    c10::DeviceGuard guard(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(device)));
    GT_CUDA_CHECK(cudart().device_synchronize());
  })
#else
  (void)device;
  GT_NOT_COMPILED("CUDA");
#endif
}

gt_error gt_cuda_memory(int32_t device, int64_t *allocated,
                        int64_t *peak_allocated, int64_t *reserved,
                        int64_t *peak_reserved) {
#ifdef GT_WITH_CUDA
  GT_TRY({
    check_cuda_device(device);
    namespace alloc = c10::cuda::CUDACachingAllocator;
    auto stats = alloc::getDeviceStats(static_cast<c10::DeviceIndex>(device));
#if GT_TORCH_AT_LEAST(2, 5) // StatType moved to c10's device-generic allocator
    constexpr auto all = static_cast<size_t>(c10::CachingDeviceAllocator::StatType::AGGREGATE);
#else
    constexpr auto all = static_cast<size_t>(c10::cuda::CUDACachingAllocator::StatType::AGGREGATE);
#endif
    *allocated = stats.allocated_bytes[all].current;
    *peak_allocated = stats.allocated_bytes[all].peak;
    *reserved = stats.reserved_bytes[all].current;
    *peak_reserved = stats.reserved_bytes[all].peak;
  })
#else
  (void)device, (void)allocated, (void)peak_allocated, (void)reserved,
      (void)peak_reserved;
  GT_NOT_COMPILED("CUDA");
#endif
}

gt_error gt_cuda_reset_peak(int32_t device) {
#ifdef GT_WITH_CUDA
  GT_TRY({
    check_cuda_device(device);
    c10::cuda::CUDACachingAllocator::resetPeakStats(
        static_cast<c10::DeviceIndex>(device));
  })
#else
  (void)device;
  GT_NOT_COMPILED("CUDA");
#endif
}

gt_error gt_cuda_empty_cache(void) {
#ifdef GT_WITH_CUDA
  GT_TRY({
    // Without a device there is no cache to empty: say so, as every other
    // CUDA call does, rather than succeed at nothing.
    if (c10::cuda::device_count() == 0) throw gt::coded_error(GT_ERR_NO_DEVICE, "no CUDA device: 0 visible");
    c10::cuda::CUDACachingAllocator::emptyCache();
  })
#else
  GT_NOT_COMPILED("CUDA");
#endif
}

gt_error gt_cuda_event_record(int32_t device, void **out) {
#ifdef GT_WITH_CUDA
  GT_TRY({
    check_cuda_device(device);
    c10::DeviceGuard guard(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(device)));
    cudaEvent_t ev;
    GT_CUDA_CHECK(cudart().event_create(&ev));
    cudaError_t e = cudart().event_record(
        ev, c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).stream());
    if (e != cudaSuccess) cudart().event_destroy(ev);
    GT_CUDA_CHECK(e);
    *out = ev;
  })
#else
  (void)device, (void)out;
  GT_NOT_COMPILED("CUDA");
#endif
}

gt_error gt_cuda_event_elapsed(void *start, void *end, float *ms) {
#ifdef GT_WITH_CUDA
  GT_TRY({
    TORCH_CHECK(start != nullptr && end != nullptr, "nil CUDA event");
    GT_CUDA_CHECK(cudart().event_synchronize(static_cast<cudaEvent_t>(end)));
    GT_CUDA_CHECK(cudart().event_elapsed_time(ms, static_cast<cudaEvent_t>(start),
                                       static_cast<cudaEvent_t>(end)));
  })
#else
  (void)start, (void)end, (void)ms;
  GT_NOT_COMPILED("CUDA");
#endif
}

void gt_cuda_event_free(void *event) {
#ifdef GT_WITH_CUDA
  if (event != nullptr) cudart().event_destroy(static_cast<cudaEvent_t>(event));
#else
  (void)event;
#endif
}

gt_error gt_mps_synchronize(void) {
#ifdef GT_WITH_MPS
  GT_TRY({
    if (!at::hasMPS()) throw gt::coded_error(GT_ERR_NO_DEVICE, "MPS is not available on this machine");
    at::detail::getMPSHooks().deviceSynchronize();
  })
#else
  GT_NOT_COMPILED("MPS (it needs macOS and libtorch >= 2.1)");
#endif
}

gt_error gt_mps_memory(int64_t *allocated) {
#ifdef GT_WITH_MPS
  GT_TRY({
    if (!at::hasMPS()) throw gt::coded_error(GT_ERR_NO_DEVICE, "MPS is not available on this machine");
    *allocated = static_cast<int64_t>(
        at::detail::getMPSHooks().getCurrentAllocatedMemory());
  })
#else
  (void)allocated;
  GT_NOT_COMPILED("MPS (it needs macOS and libtorch >= 2.1)");
#endif
}

}  // extern "C"
