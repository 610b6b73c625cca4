package gotch

// csrcSum is the sha256 of csrc/, the shim's C++ (each file's name, a
// newline and its bytes, in name order). shim.cpp includes those files, and
// Go's build cache does not see files outside the package's folder: without
// this constant, changing only csrc/ left a stale shim in the cache.
// TestCsrcSum fails when it is out of date; ./build.sh rewrites it.
const csrcSum = "cbcc72f4a7f2ccede2fe7bdc47609ed724be651f956a8508a33be54b4227d19c"
