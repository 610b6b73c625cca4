package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	in := `{"impl":"golens","workload":"forward","shape":"toy","batch":1,"seq":32,"dtype":"float32","device":"cpu","status":"OK","median_ms":1.0,"throughput":32000,"throughput_unit":"tokens/s"}
{"impl":"pytorch","workload":"forward","shape":"toy","batch":1,"seq":32,"dtype":"float32","device":"cpu","status":"OK","median_ms":5.0,"threads":2}

{"impl":"pytorch","workload":"forward","shape":"toy","batch":1,"seq":32,"dtype":"float32","device":"cpu","status":"OK","median_ms":4.0,"threads":1}
{"impl":"cpp","workload":"forward","shape":"toy","batch":1,"seq":32,"dtype":"float32","device":"cpu","status":"ERROR","error":"boom"}
{"impl":"golens","workload":"cache_all","shape":"toy","batch":1,"seq":32,"dtype":"float32","device":"cpu","status":"WRONG","error":"x"}
{"impl":"pytorch","workload":"cache_all","shape":"toy","batch":1,"seq":32,"dtype":"float32","device":"cpu","status":"OK","median_ms":6.0}
`
	out := table(t, in)
	for _, want := range []string{
		"| forward | toy | 1x32 | float32 | cpu | 1 | 3.2e+04 tokens/s | 4 | 0.25 | ERROR | |", // the faster pytorch setting counts
		"| cache_all | toy | 1x32 | float32 | cpu | WRONG |  | 6 | | | |",
		"- cpp forward toy 1x32 float32 cpu: ERROR boom",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if _, err := ReadRows(strings.NewReader("{\"impl\":\"golens\",\"workload\":\"forward\"}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: %v", err)
	}
}

// With a measured matmul peak the table says which share golens reached.
func TestTablePeak(t *testing.T) {
	in := `{"impl":"pytorch","workload":"matmul_peak","shape":"8192x8192","batch":1,"seq":8192,"dtype":"float32","device":"cuda","status":"OK","median_ms":2,"tflops":50}
{"impl":"golens","workload":"forward","shape":"gpt2-small","batch":16,"seq":1024,"dtype":"float32","device":"cuda","status":"OK","median_ms":10,"tflops":20}
`
	out := table(t, in)
	if want := "| forward | gpt2-small | 16x1024 | float32 | cuda | 10 |  | 40.0 |"; !strings.Contains(out, want) {
		t.Errorf("table lacks %q:\n%s", want, out)
	}
	if strings.Contains(out, "matmul_peak |") {
		t.Errorf("the peak is a row of its own:\n%s", out)
	}
}

// table reads rows in JSON lines and returns their table.
func table(t *testing.T, in string) string {
	t.Helper()
	rows, err := ReadRows(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Table(&b, rows); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
