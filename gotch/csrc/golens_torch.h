/*
 * golens_torch.h: the C ABI of golens's libtorch shim.
 *
 * Everything that crosses between Go and libtorch crosses here: opaque
 * handles, plain C scalars and arrays. No C++ type and no exception crosses;
 * no call reads state left behind by an earlier call.
 *
 * Conventions
 *   - Every fallible call returns a gt_error: NULL on success, otherwise
 *     the failure's kind (a gt_error_code) and ATen's message without its
 *     C++ backtrace. The caller frees it with gt_error_free.
 *   - A call that creates a tensor fills a gt_out: the new handle plus its
 *     dtype, device and shape, so the caller needs no further crossing to
 *     know them. The caller owns out->tensor and frees it with
 *     gt_tensor_free. An undefined result (a leaf's missing grad) comes back
 *     as out->tensor == NULL.
 *   - In-place ops fill out with the receiver's handle and new metadata;
 *     no new handle is created.
 *
 * Worked example: create, operate, read back, free.
 *
 *   float data[6] = {1, 2, 3, 4, 5, 6};
 *   int64_t shape[2] = {2, 3};
 *   gt_out a, s;
 *   gt_error err = gt_from_data(&a, data, shape, 2, GT_FLOAT32, GT_CPU, 0);
 *   if (!err) err = gt_sum_dims(&s, a.tensor, (int64_t[]){1}, 1, 0);
 *   if (!err) {
 *     float sums[2];
 *     err = gt_copy_to(s.tensor, sums, sizeof sums, GT_FLOAT32);  // {6, 15}
 *     gt_tensor_free(s.tensor);
 *   }
 *   if (err) { fprintf(stderr, "%s\n", err->message); gt_error_free(err); }
 *   gt_tensor_free(a.tensor);
 */
#ifndef GOLENS_TORCH_H
#define GOLENS_TORCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on every incompatible change; the Go package refuses a mismatch. */
#define GT_ABI_VERSION 2
/* Largest rank a gt_out describes; ops on higher ranks return an error. */
#define GT_MAX_DIMS 12

typedef struct gt_tensor_s *gt_tensor;       /* an at::Tensor on the heap */
typedef struct gt_generator_s *gt_generator; /* a seeded CPU random generator */

/* The kind of a failure, so callers need not match message text. */
typedef enum {
  GT_ERR_TORCH = 1,         /* libtorch refused the call: shapes, dtypes, values */
  GT_ERR_NOT_COMPILED = 2,  /* the shim was built without this device's support */
  GT_ERR_NO_DEVICE = 3,     /* the device asked for is not there */
  GT_ERR_OUT_OF_MEMORY = 4, /* an allocator (host or device) ran out of memory */
  GT_ERR_INTERNAL = 5,      /* any other C++ exception */
} gt_error_code;

/* A failure; NULL means success. One allocation holds both fields: the
 * caller frees it with gt_error_free. */
typedef struct gt_error_s {
  int32_t code;        /* a gt_error_code */
  const char *message; /* NUL-terminated, owned by the error */
} *gt_error;

typedef enum {
  GT_FLOAT32 = 0,
  GT_FLOAT64 = 1,
  GT_FLOAT16 = 2,
  GT_BFLOAT16 = 3,
  GT_INT64 = 4,
  GT_INT32 = 5,
  GT_UINT8 = 6,
  GT_BOOL = 7,
} gt_dtype;

typedef enum { GT_CPU = 0, GT_CUDA = 1, GT_MPS = 2 } gt_device_type;

/* What a call that creates (or changes) a tensor reports about it. */
typedef struct {
  gt_tensor tensor;      /* owned by the caller; NULL for an undefined tensor */
  int32_t dtype;         /* a gt_dtype */
  int32_t device_type;   /* a gt_device_type */
  int32_t device_index;  /* -1 on CPU */
  int32_t ndim;
  int32_t requires_grad; /* 0 or 1 */
  int64_t shape[GT_MAX_DIMS];
} gt_out;

/* ---- versions, errors, handles ---------------------------------------- */

/* GT_ABI_VERSION as compiled into the shim. */
int32_t gt_abi_version(void);
/* The torch version the shim was compiled against, e.g. "1.13.0"; static. */
const char *gt_torch_version(void);
/* Frees an error returned by any call; NULL is allowed. */
void gt_error_free(gt_error err);
/* Number of live tensor and generator handles; tests assert it returns to
 * its baseline. */
int64_t gt_live_handles(void);
/* Frees a tensor handle; NULL is allowed. The storage goes when the last
 * handle (or autograd graph) referring to it goes. */
void gt_tensor_free(gt_tensor t);
/* Fills out with t's current metadata; out->tensor is t itself (not a new
 * handle). */
gt_error gt_tensor_info(gt_out *out, gt_tensor t);

/* ---- data in and out -------------------------------------------------- */

/* Copies ndim-dimensional contiguous data of the given dtype into a new
 * tensor on the given device. The caller keeps ownership of data. */
gt_error gt_from_data(gt_out *out, const void *data, const int64_t *shape,
                      int32_t ndim, int32_t dtype, int32_t device_type,
                      int32_t device_index);
/* Converts t to dtype on the CPU and copies its elements, row-major, into
 * dst, which holds nbytes; nbytes must be exactly numel * element size. */
gt_error gt_copy_to(gt_tensor t, void *dst, int64_t nbytes, int32_t dtype);

/* ---- random generators ------------------------------------------------ */

/* A new CPU generator seeded with seed; the caller frees it with
 * gt_generator_free. Random ops draw on the CPU from it and move the result
 * to the requested device, so a seed gives the same numbers everywhere. */
gt_error gt_generator_new(gt_generator *out, uint64_t seed);
/* Frees a generator; NULL is allowed. */
void gt_generator_free(gt_generator g);
/* Seeds torch's global generators (CPU and every CUDA device). */
gt_error gt_manual_seed(uint64_t seed);

/* ---- per-thread and global state -------------------------------------- */

/* Sets grad mode for the calling OS thread; returns the previous mode. */
int32_t gt_set_grad_enabled(int32_t enabled);
/* Grad mode of the calling OS thread: 1 when autograd records. */
int32_t gt_is_grad_enabled(void);
/* Sets the number of intra-op threads (global); n >= 1. */
gt_error gt_set_num_threads(int32_t n);
/* The number of intra-op threads. */
int32_t gt_get_num_threads(void);
/* Gives the calling OS thread the intra-op thread count last set with
 * gt_set_num_threads: libtorch keeps the count per thread, and a thread that
 * never got it runs ops on every CPU, beside BLAS's own threads. Every shim
 * entry does this itself; code that runs ATen for golens outside the shim
 * (an extension, golens_torch_ext.h) calls it first, on the same thread. */
void gt_prepare_thread(void);
/* 1 when this libtorch has a usable device of the type (CUDA needs a GPU
 * and a CUDA build; MPS needs macOS and a MPS build). */
int32_t gt_has_device(int32_t device_type);
/* Describes the libtorch build: BLAS, OpenMP, CUDA support; static. */
const char *gt_build_info(void);
/* 1 when the shim has a fused scaled-dot-product attention. */
int32_t gt_has_fused_attention(void);

/* ---- CUDA (every call errors with "not compiled" without CUDA) -------- */

/* Number of visible CUDA devices (0 without CUDA). */
int32_t gt_cuda_device_count(void);
/* Name (into buf of len bytes), compute capability and total memory. */
gt_error gt_cuda_device_properties(int32_t device, char *buf, int32_t len,
                                   int32_t *major, int32_t *minor,
                                   int64_t *total_bytes);
/* Waits for all work on the device. */
gt_error gt_cuda_synchronize(int32_t device);
/* Caching-allocator statistics in bytes: current and peak allocated,
 * current and peak reserved. */
gt_error gt_cuda_memory(int32_t device, int64_t *allocated,
                        int64_t *peak_allocated, int64_t *reserved,
                        int64_t *peak_reserved);
/* Resets the peak statistics of the device. */
gt_error gt_cuda_reset_peak(int32_t device);
/* Returns cached, unused blocks to the driver. */
gt_error gt_cuda_empty_cache(void);
/* Records a timing event on the device's current stream into *out; the
 * caller frees it with gt_cuda_event_free. */
gt_error gt_cuda_event_record(int32_t device, void **out);
/* Milliseconds between two recorded events; waits for end. */
gt_error gt_cuda_event_elapsed(void *start, void *end, float *ms);
/* Frees an event; NULL is allowed. */
void gt_cuda_event_free(void *event);

/* ---- MPS (every call errors with "not compiled" off macOS) ------------ */

/* Waits for all work on the MPS device. */
gt_error gt_mps_synchronize(void);
/* Bytes currently allocated by the MPS allocator. */
gt_error gt_mps_memory(int64_t *allocated);

#include "golens_torch_ops.h"

#ifdef __cplusplus
}
#endif
#endif /* GOLENS_TORCH_H */
