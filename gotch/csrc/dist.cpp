// dist.cpp: c10d, the engine of torch.distributed: stores, Gloo and NCCL
// process groups, collectives. Gloo needs its headers (Debian:
// libgloo-dev), NCCL the cuda tag and nccl.h; without them the calls
// answer GT_ERR_NOT_COMPILED, so the shim always builds.
#include "shim.h"

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>

#if __has_include(<gloo/config.h>)
#define USE_C10D_GLOO 1
#define GT_WITH_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(GT_WITH_CUDA) && __has_include(<nccl.h>)
#define USE_C10D_NCCL 1
#define GT_WITH_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

// Gloo and NCCL groups derive from ProcessGroup up to torch 1.13 and from
// Backend (a ProcessGroup holds one per device) since 2.0; both classes
// declare the collectives used here with the same signatures.
#if GT_TORCH_AT_LEAST(2, 0)
#include <torch/csrc/distributed/c10d/Backend.hpp>
using gt_pg_base = c10d::Backend;
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
using gt_pg_base = c10d::ProcessGroup;
#endif

struct gt_store_s {
  c10::intrusive_ptr<c10d::Store> s;
  int32_t port;  // -1 unless TCP
};

struct gt_pg_s {
  c10::intrusive_ptr<gt_pg_base> pg;
};

struct gt_work_s {
  c10::intrusive_ptr<c10d::Work> w;
  std::vector<at::Tensor> keep;  // the tensors in flight, alive until freed
};

namespace {

using ms = std::chrono::milliseconds;

c10d::Store &store(gt_store h) {
  TORCH_CHECK(h != nullptr, "a nil or closed store");
  return *h->s;
}

gt_pg_base &group(gt_pg h) {
  TORCH_CHECK(h != nullptr, "a nil or closed process group");
  return *h->pg;
}

gt_store new_store(c10::intrusive_ptr<c10d::Store> s, int32_t port) {
  auto *h = new gt_store_s{std::move(s), port};
  gt::live_handles++;
  return h;
}

c10d::ReduceOp reduce_op(int32_t op) {
  switch (op) {
    case GT_REDUCE_SUM: return c10d::ReduceOp::SUM;
    case GT_REDUCE_PRODUCT: return c10d::ReduceOp::PRODUCT;
    case GT_REDUCE_MIN: return c10d::ReduceOp::MIN;
    case GT_REDUCE_MAX: return c10d::ReduceOp::MAX;
  }
  TORCH_CHECK(false, "unknown reduce op ", op);
}

// Wraps a started collective and the tensors it reads or writes.
void fill_work(gt_work *out, c10::intrusive_ptr<c10d::Work> w, std::vector<at::Tensor> keep) {
  *out = new gt_work_s{std::move(w), std::move(keep)};
  gt::live_handles++;
}

#ifdef GT_WITH_GLOO
c10::intrusive_ptr<gt_pg_base> new_gloo(c10::intrusive_ptr<c10d::Store> st, int32_t rank,
                                        int32_t size, ms timeout, const char *hostname) {
  auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
  if (hostname != nullptr && *hostname != '\0') {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(hostname));
  } else if (const char *ifnames = std::getenv("GLOO_SOCKET_IFNAME")) {
    std::stringstream names(ifnames);
    for (std::string name; std::getline(names, name, ',');)
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
  } else {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  opts->threads = 2;  // torch.distributed's default
  return c10::make_intrusive<c10d::ProcessGroupGloo>(st, rank, size, opts);
}
#endif

#ifdef GT_WITH_NCCL
c10::intrusive_ptr<gt_pg_base> new_nccl(c10::intrusive_ptr<c10d::Store> st, int32_t rank,
                                        int32_t size, ms timeout) {
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(st, rank, size, opts);
}
#endif

}  // namespace

#define GT_DIST_NOT_COMPILED(what)                                                  \
  throw gt::coded_error(GT_ERR_NOT_COMPILED,                                        \
                        "not compiled: this golens shim was built without " what)

extern "C" {

int32_t gt_dist_has_backend(int32_t backend) {
  switch (backend) {
#ifdef GT_WITH_GLOO
    case GT_BACKEND_GLOO: return 1;
#endif
#ifdef GT_WITH_NCCL
    case GT_BACKEND_NCCL: return 1;
#endif
    default: return 0;
  }
}

gt_error gt_store_tcp(gt_store *out, const char *host, int32_t port, int32_t is_server,
                      int64_t timeout_ms) {
  GT_TRY({
    TORCH_CHECK(port >= 0 && port < 65536, "port ", port, " is out of range");
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(port);
    o.isServer = is_server != 0;
    o.waitWorkers = false;  // the join names missing ranks itself
    o.timeout = ms(timeout_ms);
    o.multiTenant = true;   // as torch.distributed's own server
#if GT_TORCH_AT_LEAST(2, 2)
    // The libuv server (2.2's option, the default from 2.4) is missing from
    // builds without libuv, Debian's among them; the classic one is in all.
    o.useLibUV = false;
#endif
    auto s = c10::make_intrusive<c10d::TCPStore>(host, o);
    int32_t bound = s->getPort();
    *out = new_store(std::move(s), bound);
  })
}

gt_error gt_store_file(gt_store *out, const char *path, int32_t world_size, int64_t timeout_ms) {
  GT_TRY({
    auto s = c10::make_intrusive<c10d::FileStore>(path, world_size);
    s->setTimeout(ms(timeout_ms));
    *out = new_store(std::move(s), -1);
  })
}

gt_error gt_store_prefix(gt_store *out, gt_store base, const char *prefix) {
  GT_TRY({
    store(base);
    *out = new_store(c10::make_intrusive<c10d::PrefixStore>(prefix, base->s), -1);
  })
}

int32_t gt_store_port(gt_store s) { return s == nullptr ? -1 : s->port; }

void gt_store_free(gt_store s) {
  if (s == nullptr) return;
  delete s;
  gt::live_handles--;
}

gt_error gt_store_set(gt_store s, const char *key, const void *value, int64_t n) {
  GT_TRY({
    auto *p = static_cast<const uint8_t *>(value);
    store(s).set(key, std::vector<uint8_t>(p, p + n));
  })
}

gt_error gt_store_get(gt_store s, const char *key, void **value, int64_t *n) {
  GT_TRY({
    std::vector<uint8_t> v = store(s).get(key);
    void *p = std::malloc(v.empty() ? 1 : v.size());
    if (p == nullptr) throw std::bad_alloc();
    if (!v.empty()) std::memcpy(p, v.data(), v.size());
    *value = p;
    *n = static_cast<int64_t>(v.size());
  })
}

gt_error gt_store_add(gt_store s, const char *key, int64_t delta, int64_t *out) {
  GT_TRY({ *out = store(s).add(key, delta); })
}

gt_error gt_store_check(gt_store s, const char *key, int32_t *out) {
  GT_TRY({ *out = store(s).check({key}) ? 1 : 0; })
}

gt_error gt_pg_new(gt_pg *out, gt_store st, int32_t backend, int32_t rank, int32_t size,
                   int64_t timeout_ms, const char *hostname) {
  GT_TRY({
    store(st);
    TORCH_CHECK(size >= 1 && rank >= 0 && rank < size, "rank ", rank,
                " is not in a group of size ", size);
    c10::intrusive_ptr<gt_pg_base> pg;
    switch (backend) {
      case GT_BACKEND_GLOO:
#ifdef GT_WITH_GLOO
        pg = new_gloo(st->s, rank, size, ms(timeout_ms), hostname);
        break;
#else
        GT_DIST_NOT_COMPILED("Gloo (install libtorch's Gloo headers, Debian: libgloo-dev)");
#endif
      case GT_BACKEND_NCCL:
#ifdef GT_WITH_NCCL
        pg = new_nccl(st->s, rank, size, ms(timeout_ms));
        break;
#else
        GT_DIST_NOT_COMPILED("NCCL (build with the cuda tag against a CUDA libtorch with nccl.h)");
#endif
      default:
        TORCH_CHECK(false, "unknown backend ", backend);
    }
    *out = new gt_pg_s{std::move(pg)};
    gt::live_handles++;
  })
}

gt_error gt_pg_set_sequence_number(gt_pg pg) {
  GT_TRY({ group(pg).setSequenceNumberForGroup(); })
}

void gt_pg_free(gt_pg pg) {
  if (pg == nullptr) return;
  delete pg;
  gt::live_handles--;
}

gt_error gt_pg_allreduce(gt_work *out, gt_pg pg, gt_tensor t, int32_t op) {
  GT_TRY({
    std::vector<at::Tensor> ts{gt::arg(t, "tensor")};
    c10d::AllreduceOptions o;
    o.reduceOp = reduce_op(op);
    fill_work(out, group(pg).allreduce(ts, o), ts);
  })
}

gt_error gt_pg_broadcast(gt_work *out, gt_pg pg, gt_tensor t, int32_t root) {
  GT_TRY({
    std::vector<at::Tensor> ts{gt::arg(t, "tensor")};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    fill_work(out, group(pg).broadcast(ts, o), ts);
  })
}

gt_error gt_pg_allgather(gt_work *out, gt_pg pg, const gt_tensor *outs, int32_t n, gt_tensor in) {
  GT_TRY({
    std::vector<std::vector<at::Tensor>> os{gt::list(outs, n, "outputs")};
    std::vector<at::Tensor> is{gt::arg(in, "input")};
    std::vector<at::Tensor> keep = os[0];
    keep.push_back(is[0]);
    fill_work(out, group(pg).allgather(os, is), std::move(keep));
  })
}

gt_error gt_pg_reduce_scatter(gt_work *out, gt_pg pg, gt_tensor t, const gt_tensor *ins,
                              int32_t n, int32_t op) {
  GT_TRY({
    std::vector<at::Tensor> os{gt::arg(t, "output")};
    std::vector<std::vector<at::Tensor>> is{gt::list(ins, n, "inputs")};
    c10d::ReduceScatterOptions o;
    o.reduceOp = reduce_op(op);
    std::vector<at::Tensor> keep = is[0];
    keep.push_back(os[0]);
    fill_work(out, group(pg).reduce_scatter(os, is, o), std::move(keep));
  })
}

gt_error gt_pg_barrier(gt_work *out, gt_pg pg) {
  GT_TRY({ fill_work(out, group(pg).barrier(), {}); })
}

gt_error gt_pg_send(gt_work *out, gt_pg pg, gt_tensor t, int32_t dst, int32_t tag) {
  GT_TRY({
    std::vector<at::Tensor> ts{gt::arg(t, "tensor")};
    fill_work(out, group(pg).send(ts, dst, tag), ts);
  })
}

gt_error gt_pg_recv(gt_work *out, gt_pg pg, gt_tensor t, int32_t src, int32_t tag) {
  GT_TRY({
    std::vector<at::Tensor> ts{gt::arg(t, "tensor")};
    fill_work(out, group(pg).recv(ts, src, tag), ts);
  })
}

// Blocks for the whole op: Work::wait(timeout) cannot poll, as a Gloo send
// or receive that times out is finished with that failure, and NCCL's
// aborts its communicator. The Go side waits on another thread to honour
// a context.
gt_error gt_work_wait(gt_work w) {
  GT_TRY({
    TORCH_CHECK(w != nullptr, "a nil or freed work handle");
    w->w->wait();
  })
}

void gt_work_free(gt_work w) {
  if (w == nullptr) return;
  delete w;
  gt::live_handles--;
}

}  // extern "C"
