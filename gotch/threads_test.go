package gotch

import (
	"strconv"
	"strings"
	"testing"
)

func TestDefaultThreads(t *testing.T) {
	for _, c := range []struct {
		env          string
		torchDefault int
		openMP       bool
		blas         string
		want         int
		reason       string // a part of the reason
	}{
		{"", 2, true, "openblas-pthread", 1, "compete"},
		{"", 2, false, "openblas-pthread", 2, "libtorch's own default"},
		{"", 2, true, "openblas-openmp", 1, "threads of openblas-openmp would compete"},
		{"", 2, true, "openblas-serial", 2, "libtorch's own default (BLAS: openblas-serial)"},
		{"", 1, true, "other", 1, "libtorch's own default (BLAS: other)"},
		{"3", 2, true, "openblas-pthread", 3, "3, from GOLENS_NUM_THREADS"},
		{" 2\n", 1, true, "other", 2, "from GOLENS_NUM_THREADS"},
		{"0", 2, true, "openblas-pthread", 1, `GOLENS_NUM_THREADS="0" ignored`},
		{"-1", 4, true, "other", 4, `GOLENS_NUM_THREADS="-1" ignored`},
		{"two", 2, true, "other", 2, `GOLENS_NUM_THREADS="two" ignored`},
		{"1.5", 2, true, "other", 2, "ignored: not a whole number from 1 to 1024"},
		{"1024", 2, true, "other", 1024, "from GOLENS_NUM_THREADS"},
		{"auto", 2, true, "openblas-pthread", 1, "compete"},
		{"auto", 3, true, "other", 3, "libtorch's own default"},
		{"1025", 2, true, "other", 2, `GOLENS_NUM_THREADS="1025" ignored`},
		{"99999999999999999999", 2, true, "other", 2, "ignored"},
	} {
		n, why := recommendThreads(c.env, c.torchDefault, c.openMP, c.blas)
		if n != c.want || !strings.Contains(why, c.reason) {
			t.Errorf("recommendThreads(%q, %d, %v, %q) = %d, %q; want %d and a reason containing %q",
				c.env, c.torchDefault, c.openMP, c.blas, n, why, c.want, c.reason)
		}
	}
}

func TestBLASFromMaps(t *testing.T) {
	const lib = "7f12-7f34 r-xp 00000000 08:01 123 "
	for _, c := range []struct{ maps, want string }{
		{lib + "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3\n", "openblas-pthread"},
		{lib + "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblasp-r0.3.21.so\n", "openblas-openmp"},
		{lib + "/usr/lib/x86_64-linux-gnu/openblas-serial/libblas.so.3\n", "openblas-serial"},
		{lib + "/opt/lib/libopenblas.so.0\n", "openblas-pthread"},
		{lib + "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0\n" + lib + "/usr/lib/libgomp.so.1\n",
			"/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0"},
		{lib + "/usr/lib/libgomp.so.1\n7f00-7f10 rw-p 00000000 00:00 0 \n", "other"},
		{"", "other"},
	} {
		if got := blasFromMaps(c.maps); got != c.want {
			t.Errorf("blasFromMaps(%q) = %q, want %q", c.maps, got, c.want)
		}
	}
}

func TestRecommendedThreadsApplied(t *testing.T) {
	if !cgoEnabled {
		t.Skip("no libtorch without cgo")
	}
	why, err := UseRecommendedThreads()
	if err != nil {
		t.Fatal(err)
	}
	n, _, _ := strings.Cut(why, ",")
	if got := strconv.Itoa(NumThreads()); got != n {
		t.Errorf("NumThreads() = %s after UseRecommendedThreads, which chose %q", got, why)
	}
	t.Logf("blas: %s", loadedBLAS())
	t.Logf("intra-op threads: %s", why)
}
