package metal_test

import (
	"fmt"

	"github.com/golens/golens/metal"
)

func ExampleKnownBadTorch() {
	for _, v := range []string{"2.7.1", "2.8.0", "2.9.0"} {
		if bad, reason := metal.KnownBadTorch(v); bad {
			fmt.Printf("%s: %s\n", v, reason)
		} else {
			fmt.Printf("%s: no known MPS bug\n", v)
		}
	}
	// Output:
	// 2.7.1: no known MPS bug
	// 2.8.0: torch 2.8.0 computes linear layers wrongly on MPS when the input is not contiguous, corrupting attention and generation: use torch >= 2.9
	// 2.9.0: no known MPS bug
}
