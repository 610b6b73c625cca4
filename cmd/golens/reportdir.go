package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/golens/golens/analysis/report"
	"github.com/golens/golens/hookedmodel/safefile"
)

// reportMarker is in the index.html of every report golens writes: a
// folder holding one is golens's own to write again.
var reportMarker = []byte(`<meta name="generator" content="golens">`)

// checkReportDir says, before any work is done, whether dir may receive a
// report: a missing or empty folder, or one holding a report golens wrote;
// anything else (a file, a device, a folder of other things) only with
// force, and never what is not a folder.
func checkReportDir(dir string, force bool) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("report folder %s: it is not a directory", dir)
	case force:
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) == 0 {
		return err
	}
	index, err := safefile.Read(filepath.Join(dir, "index.html"), 64<<20)
	if err != nil || !bytes.Contains(index, reportMarker) {
		return fmt.Errorf("report folder %s is not empty (%s) and holds no golens report: pass --force to write into it, or choose another folder", dir, ents[0].Name())
	}
	return nil
}

// writeReport saves rep into dir and summary as dir/summary.json.
func writeReport(dir string, rep *report.Report, summary any) error {
	if err := rep.Save(dir); err != nil {
		return err
	}
	js, err := json.MarshalIndent(summary, "", " ")
	if err != nil {
		return err
	}
	return safefile.Write(filepath.Join(dir, "summary.json"), 0o644, func(w io.Writer) error {
		_, err := w.Write(append(js, '\n'))
		return err
	})
}
