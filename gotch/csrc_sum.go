package gotch

// csrcSum is the sha256 of csrc/, the shim's C++ (each file's name, a
// newline and its bytes, in name order). shim.cpp includes those files, and
// Go's build cache does not see files outside the package's folder: without
// this constant, changing only csrc/ left a stale shim in the cache.
// TestCsrcSum fails when it is out of date; ./build.sh rewrites it.
const csrcSum = "7df19ccff9f47f3003423d2df491d826bc3abe5e98b07f439d8089259920d2d4"
