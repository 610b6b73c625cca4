package gotch

// csrcSum is the sha256 of csrc/, the shim's C++ (each file's name, a
// newline and its bytes, in name order). shim.cpp includes those files, and
// Go's build cache does not see files outside the package's folder: without
// this constant, changing only csrc/ left a stale shim in the cache.
// TestCsrcSum fails when it is out of date; ./build.sh rewrites it.
const csrcSum = "ef3b87334bbca1e5a8b4fb8d2c9cd216cfe49397de4dca001d3a28c6e3307426"
