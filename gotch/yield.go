package gotch

import (
	"runtime"
	"time"
)

// YieldInterval is how long a Yielder lets its goroutine run between
// yields: half of the 10 ms after which Go's sysmon treats a goroutine as
// running too long.
const YieldInterval = 5 * time.Millisecond

// A Yielder keeps a goroutine that makes a long series of ops (a forward
// pass: hundreds of cgo calls, 100 ms and more) from looking stuck to Go's
// scheduler. Without it, once the goroutine has run 10 ms on one time
// slice, sysmon preempts it on every tick: it signals the thread, takes the
// P away inside the running op and polls every 20 µs, waking threads on the
// cores where BLAS is working. On 2 cores a GPT-2 forward made ten times
// the context switches of the same ops in one C++ call, and ran 5-8%
// slower (bench/floor); a runtime.Gosched every few ms avoids that.
//
// The zero value is ready; its first Yield starts the clock, so a run
// shorter than half an interval never yields. A Yielder belongs to one
// goroutine.
type Yielder struct{ last time.Time }

// Yield gives up the processor when YieldInterval has passed since the last
// yield (half of it since the first call).
func (y *Yielder) Yield() {
	now := time.Now()
	switch {
	case y.last.IsZero():
		y.last = now.Add(-YieldInterval / 2)
	case now.Sub(y.last) >= YieldInterval:
		runtime.Gosched()
		y.last = time.Now()
	}
}
