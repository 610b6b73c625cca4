package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/golens/golens/gotch"
	"github.com/schollz/progressbar/v3"
)

const metricsFile = "metrics.jsonl"

// MarshalJSON writes non-finite head scores as null: JSON has no number
// for them.
func (r Record) MarshalJSON() ([]byte, error) {
	type plain Record
	var hs map[string][][]*float64
	for name, rows := range r.HeadScores {
		if hs == nil {
			hs = map[string][][]*float64{}
		}
		out := make([][]*float64, len(rows))
		for l, row := range rows {
			out[l] = make([]*float64, len(row))
			for h, x := range row {
				if !math.IsNaN(x) && !math.IsInf(x, 0) {
					out[l][h] = &row[h]
				}
			}
		}
		hs[name] = out
	}
	return json.Marshal(struct {
		plain
		HeadScores map[string][][]*float64 `json:"head_scores,omitempty"`
	}{plain(r), hs})
}

// openMetrics opens out's metrics.jsonl for appending, first dropping the
// records of steps after the one the run resumes from (written by a run
// that stopped after its last checkpoint), or all of them when it starts
// afresh.
func (r *run) openMetrics() error {
	path := filepath.Join(r.out, metricsFile)
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var kept []byte
	for line := range bytes.Lines(old) {
		var rec struct{ Step int }
		if r.tr.step > 0 && json.Unmarshal(line, &rec) == nil && rec.Step <= r.tr.step {
			kept = append(kept, line...)
		}
	}
	if err := os.WriteFile(path, kept, 0o644); err != nil {
		return err
	}
	r.metrics, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	return err
}

// write appends rec to metrics.jsonl and hands it to OnRecord; on a
// data-parallel rank other than 0 it does nothing (rank 0 records the run).
func (r *run) write(rec Record) error {
	if !r.tr.dp.lead() {
		return nil
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if _, err := r.metrics.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	for _, fn := range r.o.onRecord {
		if err := gotch.Try(func() { fn(rec) }); err != nil {
			return fmt.Errorf("OnRecord: %w", err)
		}
	}
	return nil
}

// bar is the progress bar, or nothing without a writer.
type bar struct {
	pb *progressbar.ProgressBar
	w  io.Writer
}

func newBar(w io.Writer, steps, done int) *bar {
	if w == nil {
		return &bar{}
	}
	pb := progressbar.NewOptions(steps,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("train"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(100*time.Millisecond))
	_ = pb.Set(done)
	return &bar{pb, w}
}

func (b *bar) update(step int, loss, tokensPerSec float64) {
	if b.pb == nil {
		return
	}
	b.pb.Describe(fmt.Sprintf("loss %.4f  %.0f tok/s", loss, tokensPerSec))
	_ = b.pb.Set(step)
}

// close ends the bar's line; a finished bar has ended it already.
func (b *bar) close() {
	if b.pb != nil && !b.pb.IsFinished() {
		_ = b.pb.Exit()
		fmt.Fprintln(b.w)
	}
}
