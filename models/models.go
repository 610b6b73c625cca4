// Package models ships small trained models inside the golens binary, so
// `golens demo` needs no download.
package models

import _ "embed"

// Induction2L is models/induction-2l/model.safetensors: a 2-layer
// attention-only model trained by `golens train --config
// models/induction-2l.json` (see its README), in golens's checkpoint format.
//
//go:embed induction-2l/model.safetensors
var Induction2L []byte

// Induction2LMetrics is that training run's metrics.jsonl: the
// evaluation snapshots behind the demo's training curves.
//
//go:embed induction-2l/metrics.jsonl
var Induction2LMetrics []byte
