package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// ReadRows reads rows, one JSON object per line, from any implementation;
// blank lines are skipped, and a line that is not a row is an error
// naming its number.
func ReadRows(r io.Reader) ([]Row, error) {
	var rows []Row
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var row Row
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if row.Impl == "" || row.Workload == "" {
			return nil, fmt.Errorf("line %d: not a result row (no impl or workload)", n)
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

// key identifies what a row measures, whoever measured it.
type key struct {
	workload, shape, dtype, device string
	batch, seq                     int
}

func keyOf(r Row) key { return key{r.Workload, r.Shape, r.DType, r.Device, r.Batch, r.Seq} }

// Peers are the implementations golens is compared with, in table order.
var Peers = []string{"pytorch", "transformers", "cpp"}

// Table writes a markdown table of golens's rows against each peer's: the
// median times and their ratio golens / peer (below 1: golens is faster).
// Where an implementation has several rows for one measurement (a peer
// run at several thread counts), its fastest OK row counts, as each is
// compared at its best setting. Where the rows hold a measured matmul peak
// (workload matmul_peak) for the device and dtype, a column says which
// share of it golens reached. A row that is not OK shows its status in
// the table and its error in a list below it.
func Table(w io.Writer, rows []Row) error {
	best := map[key]map[string]Row{}
	var keys []key
	peak := map[[2]string]float64{} // the measured matmul peak in TFLOP/s by device and dtype
	for _, r := range rows {
		if r.Workload == "matmul_peak" {
			if r.Status == OK && r.TFLOPs != nil {
				k := [2]string{r.Device, r.DType}
				peak[k] = max(peak[k], *r.TFLOPs)
			}
			continue
		}
		k := keyOf(r)
		if best[k] == nil {
			best[k] = map[string]Row{}
			keys = append(keys, k)
		}
		if old, ok := best[k][r.Impl]; !ok || better(r, old) {
			best[k][r.Impl] = r
		}
	}
	var peers []string
	for _, p := range Peers {
		if slices.ContainsFunc(rows, func(r Row) bool { return r.Impl == p }) {
			peers = append(peers, p)
		}
	}
	head := "| workload | shape | batch×seq | dtype | device | golens ms | golens throughput |"
	rule := "| --- | --- | --- | --- | --- | ---: | ---: |"
	if len(peak) > 0 {
		head += " golens % of matmul peak |"
		rule += " ---: |"
	}
	for _, p := range peers {
		head += fmt.Sprintf(" %s ms | golens / %s |", p, p)
		rule += " ---: | ---: |"
	}
	if _, err := fmt.Fprintln(w, head+"\n"+rule); err != nil {
		return err
	}
	for _, k := range keys {
		g, ok := best[k]["golens"]
		if !ok {
			continue
		}
		line := fmt.Sprintf("| %s | %s | %dx%d | %s | %s | %s | %s |", k.workload, k.shape, k.batch, k.seq, k.dtype, k.device, ms(g), throughput(g))
		if len(peak) > 0 {
			if p := peak[[2]string{k.device, k.dtype}]; p > 0 && g.Status == OK && g.TFLOPs != nil {
				line += fmt.Sprintf(" %.1f |", 100**g.TFLOPs/p)
			} else {
				line += " |"
			}
		}
		for _, p := range peers {
			pr, ok := best[k][p]
			switch {
			case !ok:
				line += " | |"
			case g.Status != OK || pr.Status != OK:
				line += fmt.Sprintf(" %s | |", ms(pr))
			default:
				line += fmt.Sprintf(" %s | %.2f |", ms(pr), *g.MedianMS / *pr.MedianMS)
			}
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return notOK(w, rows)
}

// notOK lists the rows that are not OK, with their errors.
func notOK(w io.Writer, rows []Row) error {
	first := true
	for _, r := range rows {
		if r.Status == OK {
			continue
		}
		if first {
			if _, err := fmt.Fprint(w, "\nRows not OK:\n\n"); err != nil {
				return err
			}
			first = false
		}
		if _, err := fmt.Fprintf(w, "- %s %s %s %dx%d %s %s: %s %s\n", r.Impl, r.Workload, r.Shape, r.Batch, r.Seq, r.DType, r.Device, r.Status, r.Error); err != nil {
			return err
		}
	}
	return nil
}

// better reports whether a is a better row than b for the same measurement:
// OK before anything else, then the faster.
func better(a, b Row) bool {
	if (a.Status == OK) != (b.Status == OK) {
		return a.Status == OK
	}
	return a.Status == OK && *a.MedianMS < *b.MedianMS
}

func ms(r Row) string {
	if r.Status != OK || r.MedianMS == nil {
		return string(r.Status)
	}
	return fmt.Sprintf("%.3g", *r.MedianMS)
}

func throughput(r Row) string {
	if r.Status != OK || r.Throughput == nil {
		return ""
	}
	return fmt.Sprintf("%.3g %s", *r.Throughput, r.ThroughputUnit)
}
