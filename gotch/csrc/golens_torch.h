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
#define GT_ABI_VERSION 3
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
/* t's version counter (autograd's _version): every in-place write to t, or
 * to any view sharing its storage, increments it; caches derived from a
 * tensor compare it to know when to recompute. */
gt_error gt_tensor_version(gt_tensor t, int64_t *out);
/* Fills out[0..ndim) with t's strides in elements; ndim must be t's rank.
 * Strides say the memory order: a [r c] tensor with strides {1, r} is
 * column-major. */
gt_error gt_tensor_strides(gt_tensor t, int64_t *out, int32_t ndim);

/* ---- data in and out -------------------------------------------------- */

/* Copies ndim-dimensional contiguous data of the given dtype into a new
 * tensor on the given device. The caller keeps ownership of data. */
gt_error gt_from_data(gt_out *out, const void *data, const int64_t *shape,
                      int32_t ndim, int32_t dtype, int32_t device_type,
                      int32_t device_index);
/* gt_from_data for data stored as src_dtype, converted to dtype on the way
 * to the device: the one new tensor is the result, so a loader streaming
 * checkpoint weights holds no second copy of a tensor in its stored dtype
 * (a bfloat16 weight becomes a float32 tensor on a GPU through one host
 * buffer, data). The caller keeps ownership of data. */
gt_error gt_from_data_as(gt_out *out, const void *data, const int64_t *shape,
                         int32_t ndim, int32_t src_dtype, int32_t dtype,
                         int32_t device_type, int32_t device_index);
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

/* ---- distributed: c10d stores, process groups, collectives ----------- */
/* The c10d engine PyTorch's torch.distributed runs on. Gloo is compiled in
 * where libtorch's Gloo headers are found (Debian: libgloo-dev); NCCL with
 * the cuda tag where nccl.h is found. Collectives are asynchronous: each
 * returns a work handle to wait on with gt_work_wait; the work keeps its
 * tensors alive until it is freed. */

typedef struct gt_store_s *gt_store; /* a c10d::Store */
typedef struct gt_pg_s *gt_pg;       /* a Gloo or NCCL process group */
typedef struct gt_work_s *gt_work;   /* one collective in flight */

typedef enum { GT_BACKEND_GLOO = 0, GT_BACKEND_NCCL = 1 } gt_dist_backend;
typedef enum {
  GT_REDUCE_SUM = 0,
  GT_REDUCE_PRODUCT = 1,
  GT_REDUCE_MIN = 2,
  GT_REDUCE_MAX = 3,
} gt_reduce_op;

/* 1 when this shim has the backend compiled in. */
int32_t gt_dist_has_backend(int32_t backend);
/* A TCPStore client of host:port, or its server when is_server (port 0
 * picks a free port; gt_store_port says which). timeout_ms bounds every
 * store call. */
gt_error gt_store_tcp(gt_store *out, const char *host, int32_t port,
                      int32_t is_server, int64_t timeout_ms);
/* A FileStore on path shared by world_size processes of one host. */
gt_error gt_store_file(gt_store *out, const char *path, int32_t world_size,
                       int64_t timeout_ms);
/* A view of base whose keys all start with prefix + "/". */
gt_error gt_store_prefix(gt_store *out, gt_store base, const char *prefix);
/* The port of a TCP store, else -1. */
int32_t gt_store_port(gt_store s);
void gt_store_free(gt_store s);
gt_error gt_store_set(gt_store s, const char *key, const void *value, int64_t n);
/* Waits (up to the store's timeout) for key; *value is malloc'ed, the
 * caller frees it with free. */
gt_error gt_store_get(gt_store s, const char *key, void **value, int64_t *n);
/* Adds delta to the integer at key (0 when absent); *out is the new value. */
gt_error gt_store_add(gt_store s, const char *key, int64_t delta, int64_t *out);
/* *out is 1 when key exists. */
gt_error gt_store_check(gt_store s, const char *key, int32_t *out);

/* Joins a process group of size ranks as rank: waits (up to timeout_ms)
 * for every rank to connect through store. Gloo binds to hostname when
 * not NULL or empty, else as torch.distributed does (GLOO_SOCKET_IFNAME,
 * then this host's name). */
gt_error gt_pg_new(gt_pg *out, gt_store store, int32_t backend, int32_t rank,
                   int32_t size, int64_t timeout_ms, const char *hostname);
/* Agrees on the group's sequence number through its store, as
 * torch.distributed does after a group is made (a Python peer waits for
 * rank 0's). */
gt_error gt_pg_set_sequence_number(gt_pg pg);
void gt_pg_free(gt_pg pg);
gt_error gt_pg_allreduce(gt_work *out, gt_pg pg, gt_tensor t, int32_t op);
gt_error gt_pg_broadcast(gt_work *out, gt_pg pg, gt_tensor t, int32_t root);
/* outs: one tensor per rank, each shaped like in. */
gt_error gt_pg_allgather(gt_work *out, gt_pg pg, const gt_tensor *outs,
                         int32_t n, gt_tensor in);
/* ins: one tensor per rank, each shaped like out. */
gt_error gt_pg_reduce_scatter(gt_work *out, gt_pg pg, gt_tensor t,
                              const gt_tensor *ins, int32_t n, int32_t op);
gt_error gt_pg_barrier(gt_work *out, gt_pg pg);
gt_error gt_pg_send(gt_work *out, gt_pg pg, gt_tensor t, int32_t dst, int32_t tag);
gt_error gt_pg_recv(gt_work *out, gt_pg pg, gt_tensor t, int32_t src, int32_t tag);
/* Waits for w to finish (at most the group's timeout) and returns its
 * failure, if any. For NCCL work, it orders the current CUDA stream after
 * the collective instead of blocking. */
gt_error gt_work_wait(gt_work w);
void gt_work_free(gt_work w);

#include "golens_torch_ops.h"

#ifdef __cplusplus
}
#endif
#endif /* GOLENS_TORCH_H */
