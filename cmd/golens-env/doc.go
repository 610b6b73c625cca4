// Command golens-env finds libtorch and prints the cgo flags that build
// golens against it.
//
// Plain `go build` needs no flags where Debian's or Ubuntu's libtorch-dev
// is installed: gotch's #cgo directives name the system's folders. Any
// other libtorch takes one step:
//
//	eval "$(go run github.com/golens/golens/cmd/golens-env)"
//	go build ./...                 # a CUDA torch: GOFLAGS now has -tags=cuda
//
// build.sh finds libtorch with it too. It looks, in this order: $LIBTORCH (an
// unpacked libtorch zip), the torch package of python3 ($PYTHON overrides
// the interpreter; pip and conda installs), and the system's libtorch-dev.
// It prints export lines for
//
//   - CGO_CPPFLAGS: torch's include folders and -D_GLIBCXX_USE_CXX11_ABI
//     as torch was built (python's torch.compiled_with_cxx11_abi(), else
//     TorchConfig.cmake, else libc10's symbols), and for a CUDA torch the
//     folder with cuda_runtime_api.h ($CUDA_HOME, /usr/local/cuda, the
//     system, pip's nvidia packages);
//   - CGO_CXXFLAGS: -std=c++20 when torch's headers need it (PyTorch 2.14
//     and later), otherwise nothing;
//   - CGO_LDFLAGS: -L and an rpath to torch's library folder, unless the
//     linker searches it anyway. Binaries find torch where it is installed
//     and name no folder of golens's source. No libcudart is linked: the
//     shim finds the CUDA runtime's functions in the process, where
//     libtorch_cuda has loaded them;
//   - GOFLAGS, for a CUDA torch: the GOFLAGS already in force ($GOFLAGS,
//     else go env -w's) with the tag cuda added (to its -tags list if it
//     has one), so that go build, go test and go vet build gotch's CUDA
//     code with no flag of their own. For a CPU-only torch GOFLAGS is
//     exported only to take out a cuda tag an earlier eval left.
//
// A CUDA torch without the CUDA runtime's headers gets a warning on stderr
// (eval leaves it on the terminal): the cuda build cannot compile until
// the CUDA toolkit's headers or pip's nvidia-cuda-runtime package are
// installed, or CUDA_HOME names them. --json prints what it found and the
// variables as JSON; --explain says what it looked at, what it found
// where, and why. When no libtorch is found, or $LIBTORCH is not one, it
// says so in one line on stderr and exits 1.
//
// golens-env is plain Go (no cgo), so it runs before libtorch is set up.
package main
