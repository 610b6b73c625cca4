package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"

	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/safefile"
	"github.com/golens/golens/hookedmodel/tokenizer"
)

// Config is a training run as the JSON file `golens train --config` reads:
//
//	{"model": {HookedTransformerConfig},
//	 "train": {"lr": 1e-3, "warmup": 100, "steps": 2000, "batch": 16, ...},
//	 "data":  {"kind": "repeated_tokens", "repeats": 2} or {"kind": "text", "path": "corpus.txt"}}
//
// Fields left out of "train" and "data" take the defaults their comments
// give: the JSON reader starts "train" from DefaultTrainConfig, as Go code
// should, and Init fills in the rest.
type Config struct {
	Model hookedmodel.Config `json:"model"`
	Train TrainConfig        `json:"train"`
	Data  DataConfig         `json:"data"`
}

// TrainConfig is the optimisation: AdamW with a linear warm-up then cosine
// decay of the learning rate, and clipping of the global gradient norm.
type TrainConfig struct {
	LR          float64    `json:"lr"`           // peak learning rate (default 1e-3)
	MinLR       float64    `json:"min_lr"`       // where the cosine decay ends (default 0)
	Warmup      int        `json:"warmup"`       // steps of linear warm-up (default 0)
	Steps       int        `json:"steps"`        // optimisation steps in all (required)
	Batch       int        `json:"batch"`        // sequences per step (default 8)
	WeightDecay float64    `json:"weight_decay"` // decoupled, as torch.optim.AdamW (default 0.01)
	DecayAll    bool       `json:"decay_all"`    // decay biases and LayerNorm weights too, as TransformerLens's train.py (default: matrices only)
	Betas       [2]float64 `json:"betas"`        // default [0.9, 0.999]
	Eps         float64    `json:"eps"`          // default 1e-8
	Clip        float64    `json:"clip"`         // the largest global gradient norm; 0 turns clipping off (default 1)

	EvalEvery       int `json:"eval_every"`       // evaluate every so many steps, and at the start and end; 0: start and end only (default 100)
	EvalBatches     int `json:"eval_batches"`     // held-out batches per evaluation (default 4)
	CheckpointEvery int `json:"checkpoint_every"` // checkpoint every so many steps, and at the end; 0: at the end only (default 1000)
	// CheckpointMinutes checkpoints also when so many minutes have passed
	// since the last checkpoint, so a crash loses little however slow the
	// steps; 0 turns it off (default 5).
	CheckpointMinutes float64 `json:"checkpoint_minutes"`
	LogEvery          int     `json:"log_every"` // write the training loss every so many steps (default 10)
	Seed              uint64  `json:"seed"`      // seeds the weights and the data (default 0)
}

// DataConfig says where the tokens come from: "repeated_tokens", the
// induction task of RepeatedTokens, or "text", a text file as Text reads
// it.
type DataConfig struct {
	Kind string `json:"kind"`

	// repeated_tokens
	Vocab  int `json:"vocab,omitempty"`  // tokens drawn from [0, vocab) (default d_vocab)
	Length int `json:"length,omitempty"` // tokens per repeated segment (default: as many as n_ctx holds)
	// MinLength, when below Length, draws each row's segment length from
	// [min_length, length] and its prefix from [0, prefix], filling the
	// rest with random tokens: with the repeats at varying distances only
	// an induction head (not a head attending a fixed distance back) can
	// predict them. Default length.
	MinLength int    `json:"min_length,omitempty"`
	Repeats   int    `json:"repeats,omitempty"` // segments per sequence (default 2)
	Prefix    int    `json:"prefix,omitempty"`  // random tokens before the first segment (default 0)
	BOS       *int64 `json:"bos,omitempty"`     // first token of every sequence; negative for none (default vocab-1)

	// text
	Path         string  `json:"path,omitempty"`          // the text file; relative to the config file's folder
	SeqLen       int     `json:"seq_len,omitempty"`       // tokens per sequence, BOS included (default n_ctx)
	EvalFraction float64 `json:"eval_fraction,omitempty"` // share of the sequences held out (default 0.1)
}

// DefaultTrainConfig returns the defaults of the "train" fields.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{
		LR: 1e-3, Batch: 8, WeightDecay: 0.01, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8, Clip: 1,
		EvalEvery: 100, EvalBatches: 4, CheckpointEvery: 1000, CheckpointMinutes: 5, LogEvery: 10,
	}
}

// UnmarshalJSON starts from DefaultTrainConfig, so absent fields keep
// their defaults, and refuses unknown fields.
func (c *TrainConfig) UnmarshalJSON(b []byte) error {
	type plain TrainConfig
	p := plain(DefaultTrainConfig())
	if err := strict(b, &p); err != nil {
		return err
	}
	*c = TrainConfig(p)
	return nil
}

// UnmarshalJSON refuses unknown fields, so a typo is an error rather than
// a default.
func (c *DataConfig) UnmarshalJSON(b []byte) error {
	type plain DataConfig
	var p plain
	if err := strict(b, &p); err != nil {
		return err
	}
	*c = DataConfig(p)
	return nil
}

func strict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// LoadConfig reads a training config file, resolves a text file's path
// against the config's folder and fills the defaults (Init).
func LoadConfig(path string) (Config, error) {
	b, err := safefile.Read(path, safefile.JSONLimit)
	if err != nil {
		return Config{}, fmt.Errorf("read training config: %w", err)
	}
	c := Config{Train: DefaultTrainConfig()}
	if err := strict(b, &c); err != nil {
		return Config{}, fmt.Errorf("parse training config %q: %w", path, err)
	}
	if c.Data.Path != "" && !filepath.IsAbs(c.Data.Path) {
		if c.Data.Path, err = filepath.Abs(filepath.Join(filepath.Dir(path), c.Data.Path)); err != nil {
			return Config{}, fmt.Errorf("training config %q: %w", path, err)
		}
	}
	if err := c.Init(); err != nil {
		return Config{}, fmt.Errorf("training config %q: %w", path, err)
	}
	return c, nil
}

// Init validates c and fills its defaults (the model's too). It is
// idempotent.
func (c *Config) Init() error {
	if err := c.Model.Init(); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if err := c.Train.check(); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := c.Data.init(&c.Model); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	return nil
}

func (t *TrainConfig) check() error {
	switch {
	case t.Steps <= 0:
		return fmt.Errorf("steps must be positive, got %d", t.Steps)
	case t.Batch <= 0:
		return fmt.Errorf("batch must be positive, got %d", t.Batch)
	case t.LR <= 0 || t.MinLR < 0 || t.MinLR > t.LR:
		return fmt.Errorf("want 0 <= min_lr <= lr and lr > 0, got lr %g, min_lr %g", t.LR, t.MinLR)
	case t.Warmup < 0 || t.Warmup > t.Steps:
		return fmt.Errorf("warmup must be in [0, steps=%d], got %d", t.Steps, t.Warmup)
	case t.WeightDecay < 0 || t.Eps <= 0 || t.Clip < 0:
		return fmt.Errorf("weight_decay and clip must not be negative and eps must be positive, got %g, %g, %g", t.WeightDecay, t.Clip, t.Eps)
	case t.Betas[0] < 0 || t.Betas[0] >= 1 || t.Betas[1] < 0 || t.Betas[1] >= 1:
		return fmt.Errorf("betas must be in [0, 1), got %v", t.Betas)
	case t.EvalEvery < 0 || t.CheckpointEvery < 0 || t.LogEvery <= 0 || t.EvalBatches <= 0:
		return fmt.Errorf("eval_every and checkpoint_every must not be negative, log_every and eval_batches must be positive")
	case !(t.CheckpointMinutes >= 0) || math.IsInf(t.CheckpointMinutes, 0):
		return fmt.Errorf("checkpoint_minutes must be a finite number >= 0, got %g", t.CheckpointMinutes)
	}
	return nil
}

func (d *DataConfig) init(m *hookedmodel.Config) error {
	switch d.Kind {
	case "repeated_tokens":
		return d.initRepeated(m)
	case "text":
		return d.initText(m)
	}
	return fmt.Errorf("kind %q is not known (want repeated_tokens or text)", d.Kind)
}

func (d *DataConfig) initRepeated(m *hookedmodel.Config) error {
	if d.Vocab == 0 {
		d.Vocab = m.DVocab
	}
	if d.Repeats == 0 {
		d.Repeats = 2
	}
	if d.BOS == nil {
		bos := int64(d.Vocab - 1)
		d.BOS = &bos
	}
	hasBOS := 0
	if *d.BOS >= 0 {
		hasBOS = 1
	}
	if d.Length == 0 && d.Repeats > 0 {
		d.Length = (m.NCtx - hasBOS - d.Prefix) / d.Repeats
	}
	switch {
	case d.Vocab < 2 || d.Vocab > m.DVocab:
		return fmt.Errorf("vocab must be in [2, d_vocab=%d], got %d", m.DVocab, d.Vocab)
	case *d.BOS >= int64(m.DVocab):
		return fmt.Errorf("bos %d is not below d_vocab=%d", *d.BOS, m.DVocab)
	case d.MinLength < 0 || d.MinLength > d.Length:
		return fmt.Errorf("min_length must be in [0, length=%d], got %d", d.Length, d.MinLength)
	case d.Repeats <= 0 || d.Length <= 0 || d.Prefix < 0:
		return fmt.Errorf("repeats and length must be positive and prefix not negative, got %d, %d, %d", d.Repeats, d.Length, d.Prefix)
	}
	if n := hasBOS + d.Prefix + d.Repeats*d.Length; n > m.NCtx {
		return fmt.Errorf("a sequence of %d tokens exceeds n_ctx=%d", n, m.NCtx)
	}
	return nil
}

func (d *DataConfig) initText(m *hookedmodel.Config) error {
	if d.SeqLen == 0 {
		d.SeqLen = m.NCtx
	}
	if d.EvalFraction == 0 {
		d.EvalFraction = 0.1
	}
	switch v := tokenizer.GPT2().VocabSize(); {
	case d.Path == "":
		return fmt.Errorf("text data needs a path")
	case m.DVocab < v:
		return fmt.Errorf("text is tokenized with GPT-2's BPE, which needs d_vocab >= %d, got %d", v, m.DVocab)
	case d.SeqLen < 2 || d.SeqLen > m.NCtx:
		return fmt.Errorf("seq_len must be in [2, n_ctx=%d], got %d", m.NCtx, d.SeqLen)
	case d.EvalFraction <= 0 || d.EvalFraction >= 1:
		return fmt.Errorf("eval_fraction must be in (0, 1), got %g", d.EvalFraction)
	}
	return nil
}
