/*
 * golens_torch_ext.h: golens extensions, C++ libraries built against
 * libtorch that a golens program loads (gotch.OpenExtension) to run its own
 * ATen code on golens's tensors, without a copy and without going through
 * golens's ops.
 *
 * An extension links libtorch only (-ltorch_cpu -lc10), never golens's
 * shim: it reaches a tensor through the handle itself (gt_ext_tensor), so it
 * works with the shim compiled into the Go binary or loaded as a library.
 * It must be compiled against the same torch as the golens program (the
 * same version and _GLIBCXX_USE_CXX11_ABI): an at::Tensor's layout is
 * shared only within one torch, so gotch refuses an extension built against
 * another version.
 *
 * Worked example: an extension that scales a tensor in place.
 *
 *   // scale.cpp, built with the flags golens was built with: for Debian's
 *   // libtorch-dev those below, else also $CGO_CPPFLAGS, $CGO_CXXFLAGS and
 *   // $CGO_LDFLAGS as `go run .../cmd/golens-env` prints them:
 *   //   g++ -std=c++17 -shared -fPIC -I gotch/csrc \
 *   //       -I/usr/include/torch/csrc/api/include scale.cpp \
 *   //       -o libscale.so -ltorch_cpu -lc10
 *   #include "golens_torch_ext.h"
 *
 *   GT_EXTENSION()
 *
 *   // tensors: {x}; ints: {factor}. Multiplies x by factor in place.
 *   extern "C" GT_EXT_EXPORT char *scale(void **, const gt_tensor *tensors, int32_t n_tensors,
 *                                        const int64_t *ints, int32_t n_ints) {
 *     GT_EXT_TRY({
 *       TORCH_CHECK(n_tensors == 1 && n_ints == 1, "scale wants one tensor and one int");
 *       gt_ext_tensor(tensors[0], "x").mul_(ints[0]);
 *     })
 *   }
 *
 *   // Go:
 *   //   ext, err := gotch.OpenExtension("./libscale.so")
 *   //   if err != nil { ... }
 *   //   defer ext.Close()
 *   //   err = ext.Call("scale", nil, []*gotch.Tensor{x}, 3)  // x *= 3
 *
 * Conventions
 *   - Every function Go calls has the type gt_ext_fn, is declared
 *     extern "C" and exported, and wraps its body in GT_EXT_TRY: no C++
 *     exception may leave it.
 *   - The handles in tensors stay golens's: use the tensors, change their
 *     values in place, or copy an at::Tensor (a new reference to the same
 *     storage) to keep beyond the call, which keeps the storage alive after
 *     golens frees its tensor; never free or delete a handle, and never give
 *     a tensor a new shape, dtype or device in place (golens keeps those on
 *     the Go side).
 *   - gotch may call functions from several threads at once (Extension.Call
 *     is safe for concurrent use): what they share must be thread-safe, or
 *     the Go side must serialise the calls.
 *   - State that outlives a call (a model over golens's weights, say) lives
 *     behind *state: a function creates it, later ones use it, and one frees
 *     it and sets *state = NULL. Go never looks inside.
 *   - The intra-op thread count golens set is applied to the calling thread
 *     before every call; grad mode is whatever the calling thread has (in
 *     Go, inside gotch.NoGrad the call runs without autograd recording).
 */
#ifndef GOLENS_TORCH_EXT_H
#define GOLENS_TORCH_EXT_H

#include "golens_torch.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An extension function. state points to the caller's state slot (never
 * NULL; *state starts NULL and keeps whatever the functions store there).
 * tensors holds n_tensors handles, owned by golens; an entry is NULL where
 * the caller passed no tensor (an absent optional). ints holds n_ints
 * integers (NULL when n_ints is 0), owned by golens. Both arrays are valid
 * only during the call. Returns NULL on success, or a message allocated
 * with malloc that golens frees with free (GT_EXT_TRY makes it). */
typedef char *(*gt_ext_fn)(void **state, const gt_tensor *tensors, int32_t n_tensors,
                           const int64_t *ints, int32_t n_ints);

/* The names of the two symbols GT_EXTENSION defines and gotch checks:
 * int32_t gt_ext_abi_version(void) and const char *gt_ext_torch_version(void). */
#define GT_EXT_ABI_SYMBOL "gt_ext_abi_version"
#define GT_EXT_TORCH_SYMBOL "gt_ext_torch_version"

#ifdef __cplusplus
}  // extern "C"

/* Everything below is for the extension's C++ (C sees only the above, for
 * the loader in gotch/extension.go). */

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>

/* What a gt_tensor handle points to: one reference to an at::Tensor. The
 * shim (shim.h) uses this very definition. */
struct gt_tensor_s {
  at::Tensor t;
};

/* The tensor behind h, which stays golens's (see Conventions); throws a
 * c10::Error naming the argument when h is NULL. */
inline const at::Tensor &gt_ext_tensor(gt_tensor h, const char *name) {
  TORCH_CHECK(h != nullptr, "argument '", name, "' is a nil tensor");
  return h->t;
}

/* The tensor behind h, or nullopt when h is NULL (an absent optional). */
inline c10::optional<at::Tensor> gt_ext_opt_tensor(gt_tensor h) {
  if (h == nullptr) return c10::nullopt;
  return h->t;
}

/* A copy of msg allocated with malloc, for a gt_ext_fn to return (golens
 * frees it). Never NULL, which would read as success: without memory for
 * msg it returns a shorter message, and without memory for that it aborts. */
inline char *gt_ext_error(const char *msg) {
  static const char no_memory[] = "out of host memory for the extension's error message";
  size_t n = std::strlen(msg);
  char *s = static_cast<char *>(std::malloc(n + 1));
  if (s == nullptr) {
    msg = no_memory, n = sizeof no_memory - 1;
    s = static_cast<char *>(std::malloc(n + 1));
    if (s == nullptr) std::abort();
  }
  std::memcpy(s, msg, n + 1);
  return s;
}

/* Marks a function for export, also under -fvisibility=hidden. */
#define GT_EXT_EXPORT __attribute__((visibility("default")))

/* Defines the two symbols gotch.OpenExtension checks, once per extension
 * (at file scope in one .cpp): gt_ext_abi_version, the GT_ABI_VERSION of
 * this header, and gt_ext_torch_version, the torch version compiled against
 * (a static string). */
#define GT_EXTENSION()                                                              \
  extern "C" GT_EXT_EXPORT int32_t gt_ext_abi_version(void) { return GT_ABI_VERSION; } \
  extern "C" GT_EXT_EXPORT const char *gt_ext_torch_version(void) { return TORCH_VERSION; }

/* The body of a gt_ext_fn, GT_EXT_TRY({ ... }): returns NULL when the body
 * completes, and turns any C++ exception into the returned message (ATen's
 * without its backtrace). Variadic, so commas in the body need no care. */
#define GT_EXT_TRY(...)                                            \
  try {                                                            \
    __VA_ARGS__;                                                   \
    return nullptr;                                                \
  } catch (const c10::Error &e) {                                  \
    return gt_ext_error(e.what_without_backtrace());               \
  } catch (const std::bad_alloc &) {                               \
    return gt_ext_error("out of host memory");                     \
  } catch (const std::exception &e) {                              \
    return gt_ext_error(e.what());                                 \
  } catch (...) {                                                  \
    return gt_ext_error("unknown C++ exception in the extension"); \
  }

#endif /* __cplusplus */
#endif /* GOLENS_TORCH_EXT_H */
