package gotch

import (
	"fmt"
	"strconv"
	"strings"
)

// DeviceType is the kind of device; the values are the shim's codes.
type DeviceType int32

const (
	CPUType  DeviceType = 0
	CUDAType DeviceType = 1
	MPSType  DeviceType = 2
)

// Device is where a tensor lives. Index is -1 on the CPU and on MPS.
type Device struct {
	Type  DeviceType
	Index int
}

// CPU is the host.
var CPU = Device{CPUType, -1}

// MPS is Apple's Metal device.
var MPS = Device{MPSType, -1}

// CUDA is CUDA device i.
func CUDA(i int) Device { return Device{CUDAType, i} }

// String is torch's spelling: "cpu", "cuda:0", "mps".
func (d Device) String() string {
	switch d.Type {
	case CPUType:
		return "cpu"
	case CUDAType:
		return "cuda:" + strconv.Itoa(d.Index)
	case MPSType:
		return "mps"
	}
	return fmt.Sprintf("Device(%d:%d)", d.Type, d.Index)
}

// ParseDevice reads "cpu", "cuda", "cuda:N" or "mps" ("cuda" is cuda:0). It
// checks spelling only; backend.Resolve also checks availability and
// understands "auto".
func ParseDevice(s string) (Device, error) {
	switch {
	case s == "cpu":
		return CPU, nil
	case s == "mps":
		return MPS, nil
	case s == "cuda":
		return CUDA(0), nil
	case strings.HasPrefix(s, "cuda:"):
		i, err := strconv.Atoi(s[len("cuda:"):])
		if err != nil || i < 0 {
			return Device{}, fmt.Errorf("gotch: bad CUDA device index in %q", s)
		}
		return CUDA(i), nil
	}
	return Device{}, fmt.Errorf("gotch: unknown device %q (want cpu, cuda, cuda:N or mps)", s)
}

// HasDevice reports whether this libtorch can use devices of type t now;
// false for every type without cgo.
func HasDevice(t DeviceType) bool { return hasDevice(t) }
