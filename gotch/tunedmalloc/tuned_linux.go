//go:build linux && cgo

package tunedmalloc

/*
void gt_tune_malloc_at_load(void); // gotch/malloc_linux.go

__attribute__((constructor)) static void tunedmalloc_at_load(void) { gt_tune_malloc_at_load(); }
*/
import "C"

// gotch defines the function the constructor calls.
import _ "github.com/golens/golens/gotch"
