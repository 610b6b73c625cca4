package metal

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/golens/golens/gotch"
)

var (
	// ErrNotCompiled is wrapped by every error of a shim built without MPS
	// support.
	ErrNotCompiled = errors.New("the golens shim was built without MPS support (it needs macOS and libtorch >= 2.1): build golens against a libtorch with MPS, or use the cpu backend")
	// ErrUnavailable is wrapped by the errors of calls on a machine without
	// a usable MPS device.
	ErrUnavailable = errors.New("no MPS device: use the cpu backend")
)

// classify says what failed and wraps this package's sentinel for the kind
// of failure gotch reports.
func classify(what string, err error) error {
	var ge *gotch.Error
	msg := err.Error()
	if errors.As(err, &ge) {
		msg = ge.Msg
	}
	switch {
	case errors.Is(err, gotch.ErrNotCompiled):
		return fmt.Errorf("metal: %s: %w", what, ErrNotCompiled)
	case errors.Is(err, gotch.ErrNoDevice):
		return fmt.Errorf("metal: %s: %s: %w", what, msg, ErrUnavailable)
	}
	return fmt.Errorf("metal: %s: %w", what, err)
}

// KnownBadTorch reports whether torch version v (as "2.8.0", "2.8.0a0+git",
// "2.9.1+cpu") has a known MPS bug that gives wrong numbers without an
// error, and if so why. A version it cannot read counts as bad.
func KnownBadTorch(v string) (bad bool, reason string) {
	major, minor, ok := majorMinor(v)
	switch {
	case !ok:
		return true, fmt.Sprintf("cannot read torch version %q", v)
	case major < 2:
		// pytorch/pytorch#86239; TransformerLens refused MPS before 2.0.
		return true, fmt.Sprintf("torch %s broadcasts some shapes wrongly on MPS (such as an attention mask against the scores): use torch >= 2.0", v)
	case major == 2 && minor == 8:
		// pytorch/pytorch#161640, TransformerLens#1062.
		return true, fmt.Sprintf("torch %s computes linear layers wrongly on MPS when the input is not contiguous, corrupting attention and generation: use torch >= 2.9", v)
	}
	return false, ""
}

// majorMinor reads the leading "major.minor" of a version.
func majorMinor(v string) (major, minor int, ok bool) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(leadingDigits(parts[1]))
	return major, minor, err1 == nil && err2 == nil
}

// leadingDigits drops a suffix such as "a0" or "+cu121" from "8a0".
func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}
