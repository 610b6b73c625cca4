package backend_test

import (
	"errors"
	"fmt"

	"github.com/golens/golens/backend"
	"github.com/golens/golens/gotch"
)

func ExampleResolve() {
	b, err := backend.Resolve("cpu", backend.WithSelfCheck())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(b.Name())
	fmt.Println("float32:", b.Supports(gotch.Float) == nil)
	// Output:
	// cpu
	// float32: true
}

// Fall back to float32 where the device cannot compute in float16, as
// libtorch 1.13 on the CPU cannot.
func ExampleBackend_Supports() {
	b, err := backend.Resolve("auto")
	if err != nil {
		fmt.Println(err)
		return
	}
	dtype := gotch.Half
	if err := b.Supports(dtype); errors.Is(err, backend.ErrNotSupported) {
		fmt.Println(err)
		dtype = gotch.Float
	}
	fmt.Println("computing in", dtype, "on", b.Name())
}
