package gotch

import "testing"

func TestSetBLASThreads(t *testing.T) {
	before := BLASThreads()
	t.Logf("OpenBLAS threads: %d", before)
	if before < 0 {
		if SetBLASThreads(1) {
			t.Error("SetBLASThreads reported success without OpenBLAS")
		}
		return
	}
	defer SetBLASThreads(before)
	if !SetBLASThreads(1) || BLASThreads() != 1 {
		t.Errorf("after SetBLASThreads(1): %d threads", BLASThreads())
	}
	if SetBLASThreads(0) {
		t.Error("SetBLASThreads(0) succeeded")
	}
}
