//go:build cgo

package gotch

// The calls into the shim's distributed part (csrc/dist.cpp) that dist.go
// builds on; nocgo.go stands in for them without cgo.

/*
#include <stdlib.h>
#include "golens_torch.h"
*/
import "C"

import (
	"time"
	"unsafe"
)

func hasDistBackend(code int) bool { return C.gt_dist_has_backend(C.int32_t(code)) != 0 }

func millis(d time.Duration) C.int64_t { return C.int64_t(d / time.Millisecond) }

func storeTCP(host string, port int, server bool, timeout time.Duration) (unsafe.Pointer, int, error) {
	ch := C.CString(host)
	defer C.free(unsafe.Pointer(ch))
	var s C.gt_store
	if e := C.gt_store_tcp(&s, ch, C.int32_t(port), cBool(server), millis(timeout)); e != nil {
		return nil, 0, opError("NewTCPStore", e)
	}
	return unsafe.Pointer(s), int(C.gt_store_port(s)), nil
}

func storeFile(path string, worldSize int, timeout time.Duration) (unsafe.Pointer, error) {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	var s C.gt_store
	if e := C.gt_store_file(&s, cp, C.int32_t(worldSize), millis(timeout)); e != nil {
		return nil, opError("NewFileStore", e)
	}
	return unsafe.Pointer(s), nil
}

func storePrefix(base unsafe.Pointer, prefix string) (unsafe.Pointer, error) {
	cp := C.CString(prefix)
	defer C.free(unsafe.Pointer(cp))
	var s C.gt_store
	if e := C.gt_store_prefix(&s, C.gt_store(base), cp); e != nil {
		return nil, opError("Store.Prefixed", e)
	}
	return unsafe.Pointer(s), nil
}

func freeStore(p unsafe.Pointer) { C.gt_store_free(C.gt_store(p)) }

func storeSet(s unsafe.Pointer, key string, value []byte) error {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	cv := C.CBytes(value)
	defer C.free(cv)
	if e := C.gt_store_set(C.gt_store(s), ck, cv, C.int64_t(len(value))); e != nil {
		return opError("Store.Set", e)
	}
	return nil
}

func storeGet(s unsafe.Pointer, key string) ([]byte, error) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var v unsafe.Pointer
	var n C.int64_t
	if e := C.gt_store_get(C.gt_store(s), ck, &v, &n); e != nil {
		return nil, opError("Store.Get", e)
	}
	defer C.free(v)
	return C.GoBytes(v, C.int(n)), nil
}

func storeAdd(s unsafe.Pointer, key string, delta int64) (int64, error) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var out C.int64_t
	if e := C.gt_store_add(C.gt_store(s), ck, C.int64_t(delta), &out); e != nil {
		return 0, opError("Store.Add", e)
	}
	return int64(out), nil
}

func storeCheck(s unsafe.Pointer, key string) (bool, error) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var out C.int32_t
	if e := C.gt_store_check(C.gt_store(s), ck, &out); e != nil {
		return false, opError("Store.Has", e)
	}
	return out != 0, nil
}

func pgNew(store unsafe.Pointer, backend int, o GroupOptions) (unsafe.Pointer, error) {
	ch := C.CString(o.Hostname)
	defer C.free(unsafe.Pointer(ch))
	var pg C.gt_pg
	e := C.gt_pg_new(&pg, C.gt_store(store), C.int32_t(backend), C.int32_t(o.Rank), C.int32_t(o.Size), millis(o.Timeout), ch)
	if e != nil {
		return nil, opError("NewProcessGroup", e)
	}
	return unsafe.Pointer(pg), nil
}

func pgSetSequence(pg unsafe.Pointer) error {
	if e := C.gt_pg_set_sequence_number(C.gt_pg(pg)); e != nil {
		return opError("SetSequenceNumber", e)
	}
	return nil
}

func freeProcessGroup(p unsafe.Pointer) { C.gt_pg_free(C.gt_pg(p)) }

func tensorHandles(hs []unsafe.Pointer) *C.gt_tensor {
	if len(hs) == 0 {
		return nil
	}
	return (*C.gt_tensor)(unsafe.Pointer(unsafe.SliceData(hs)))
}

// workOf converts a started collective's result.
func workOf(op string, w C.gt_work, e C.gt_error) (unsafe.Pointer, error) {
	if e != nil {
		return nil, opError(op, e)
	}
	return unsafe.Pointer(w), nil
}

func pgAllReduce(pg, t unsafe.Pointer, op ReduceOp) (unsafe.Pointer, error) {
	var w C.gt_work
	e := C.gt_pg_allreduce(&w, C.gt_pg(pg), C.gt_tensor(t), C.int32_t(op))
	return workOf("AllReduce", w, e)
}

func pgBroadcast(pg, t unsafe.Pointer, root int) (unsafe.Pointer, error) {
	var w C.gt_work
	e := C.gt_pg_broadcast(&w, C.gt_pg(pg), C.gt_tensor(t), C.int32_t(root))
	return workOf("Broadcast", w, e)
}

func pgAllGather(pg unsafe.Pointer, outs []unsafe.Pointer, in unsafe.Pointer) (unsafe.Pointer, error) {
	var w C.gt_work
	e := C.gt_pg_allgather(&w, C.gt_pg(pg), tensorHandles(outs), C.int32_t(len(outs)), C.gt_tensor(in))
	return workOf("AllGather", w, e)
}

func pgReduceScatter(pg, out unsafe.Pointer, ins []unsafe.Pointer, op ReduceOp) (unsafe.Pointer, error) {
	var w C.gt_work
	e := C.gt_pg_reduce_scatter(&w, C.gt_pg(pg), C.gt_tensor(out), tensorHandles(ins), C.int32_t(len(ins)), C.int32_t(op))
	return workOf("ReduceScatter", w, e)
}

func pgBarrier(pg unsafe.Pointer) (unsafe.Pointer, error) {
	var w C.gt_work
	e := C.gt_pg_barrier(&w, C.gt_pg(pg))
	return workOf("Barrier", w, e)
}

func pgSend(pg, t unsafe.Pointer, dst, tag int) (unsafe.Pointer, error) {
	var w C.gt_work
	e := C.gt_pg_send(&w, C.gt_pg(pg), C.gt_tensor(t), C.int32_t(dst), C.int32_t(tag))
	return workOf("Send", w, e)
}

func pgRecv(pg, t unsafe.Pointer, src, tag int) (unsafe.Pointer, error) {
	var w C.gt_work
	e := C.gt_pg_recv(&w, C.gt_pg(pg), C.gt_tensor(t), C.int32_t(src), C.int32_t(tag))
	return workOf("Recv", w, e)
}

func workWait(w unsafe.Pointer) error {
	if e := C.gt_work_wait(C.gt_work(w)); e != nil {
		return opError("Work.Wait", e)
	}
	return nil
}

func freeWork(p unsafe.Pointer) { C.gt_work_free(C.gt_work(p)) }
