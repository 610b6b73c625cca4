package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/golens/golens/backend"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/safefile"
	"github.com/golens/golens/models"
	"github.com/spf13/cobra"
)

// modelFlags are the flags of every command that loads a model.
type modelFlags struct {
	model        string
	device       string
	dtype        string
	noProcessing bool
	set          []string
}

func (f *modelFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.model, "model", "", "checkpoint directory or file, a model shipped in golens ("+strings.Join(models.Names(), ", ")+"), or a known name (gpt2, gpt2-medium, ...)")
	fl.StringVar(&f.device, "device", "auto", "auto, cpu, cuda, cuda:N or mps")
	fl.StringVar(&f.dtype, "dtype", "", "float32 (default), float16, bfloat16 or float64")
	fl.BoolVar(&f.noProcessing, "no-processing", false, "load the weights as they are (from_pretrained_no_processing)")
	fl.StringSliceVar(&f.set, "set", nil, "config overrides key=value[,key=value], e.g. use_attn_result=true")
	cmd.MarkFlagRequired("model")
}

// load resolves the device and loads the model with the flags' options.
func (f *modelFlags) load(cmd *cobra.Command) (*hookedmodel.HookedTransformer, error) {
	b, err := backend.Resolve(f.device)
	if err != nil {
		return nil, err
	}
	edit, err := configEdits(f.set)
	if err != nil {
		return nil, err
	}
	opts := []hookedmodel.Option{hookedmodel.OnDevice(b.Device()), hookedmodel.WithConfig(edit)}
	if f.dtype != "" {
		d, err := gotch.ParseDType(f.dtype)
		if err != nil {
			return nil, err
		}
		opts = append(opts, hookedmodel.WithDType(d.String()))
	}
	if f.noProcessing {
		opts = append(opts, hookedmodel.NoProcessing())
	}
	return loadModel(cmd.Context(), f.model, opts...)
}

// loadModel loads what --model names: a checkpoint directory or file, a
// model shipped in the binary (models.Names; a file of that name wins), or
// a known hub name. An unknown name's error lists the shipped names too.
func loadModel(ctx context.Context, name string, opts ...hookedmodel.Option) (*hookedmodel.HookedTransformer, error) {
	if _, err := os.Stat(name); err != nil && models.Has(name) {
		return models.Load(ctx, name, opts...)
	}
	m, err := hookedmodel.Load(ctx, name, opts...)
	if err != nil && strings.Contains(err.Error(), "not a known model name") {
		return nil, fmt.Errorf("%w; shipped in golens: %s", err, strings.Join(models.Names(), ", "))
	}
	return m, err
}

// configEdits turns --set key=value pairs into a config edit, checking
// each key against the config's JSON names and each value's type.
func configEdits(pairs []string) (func(*hookedmodel.Config), error) {
	fields := map[string]json.RawMessage{}
	probe, _ := json.Marshal(hookedmodel.DefaultConfig())
	json.Unmarshal(probe, &fields)
	set := map[string]json.RawMessage{}
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--set %q: want key=value", kv)
		}
		if _, known := fields[k]; !known {
			return nil, fmt.Errorf("--set: unknown config field %q", k)
		}
		raw := json.RawMessage(v)
		if !json.Valid(raw) {
			raw, _ = json.Marshal(v) // a bare word is a string
		}
		set[k] = raw
	}
	// Check the values now, so a bad one fails before a model loads.
	probeCfg := hookedmodel.DefaultConfig()
	if err := applySet(&probeCfg, set); err != nil {
		return nil, fmt.Errorf("--set: %w", err)
	}
	return func(c *hookedmodel.Config) { applySet(c, set) }, nil
}

// applySet overwrites c's fields named by their JSON keys.
func applySet(c *hookedmodel.Config, set map[string]json.RawMessage) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for k, v := range set {
		m[k] = v
	}
	if b, err = json.Marshal(m); err != nil {
		return err
	}
	return json.Unmarshal(b, c)
}

// inputFlags choose what a command runs the model on.
type inputFlags struct {
	prompt     string
	tokensFile string
}

func (f *inputFlags) register(cmd *cobra.Command, required bool) {
	cmd.Flags().StringVar(&f.prompt, "prompt", "", "text to run on (tokenized with BOS first)")
	cmd.Flags().StringVar(&f.tokensFile, "tokens-file", "", "JSON file: an array of equal-length arrays of token ids")
	if required {
		cmd.MarkFlagsOneRequired("prompt", "tokens-file")
	}
	cmd.MarkFlagsMutuallyExclusive("prompt", "tokens-file")
}

func (f *inputFlags) given() bool { return f.prompt != "" || f.tokensFile != "" }

// input returns the model input and a function that frees it.
func (f *inputFlags) input(dev gotch.Device) (hookedmodel.Input, func(), error) {
	if f.tokensFile == "" {
		return hookedmodel.Text(f.prompt), func() {}, nil
	}
	t, err := f.tokens(dev)
	if err != nil {
		return nil, nil, err
	}
	return hookedmodel.Tokens(t), t.Free, nil
}

// tokens reads the tokens file into a [batch pos] tensor on dev.
func (f *inputFlags) tokens(dev gotch.Device) (*gotch.Tensor, error) {
	b, err := safefile.Read(f.tokensFile, safefile.TokensLimit)
	if err != nil {
		return nil, err
	}
	var rows [][]int64
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, fmt.Errorf("%s: want a JSON array of arrays of token ids: %w", f.tokensFile, err)
	}
	if len(rows) == 0 || len(rows[0]) == 0 {
		return nil, fmt.Errorf("%s: no tokens", f.tokensFile)
	}
	flat := make([]int64, 0, len(rows)*len(rows[0]))
	for i, r := range rows {
		if len(r) != len(rows[0]) {
			return nil, fmt.Errorf("%s: row %d has %d tokens, row 0 has %d (rows must be equally long)", f.tokensFile, i, len(r), len(rows[0]))
		}
		flat = append(flat, r...)
	}
	return gotch.FromSlice(flat, []int64{int64(len(rows)), int64(len(rows[0]))}, dev)
}

// loadWithInput loads the model and reads the input onto its device; done
// frees both.
func loadWithInput(cmd *cobra.Command, mf *modelFlags, in *inputFlags) (*hookedmodel.HookedTransformer, hookedmodel.Input, func(), error) {
	m, err := mf.load(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	input, free, err := in.input(m.Device())
	if err != nil {
		m.Free()
		return nil, nil, nil, err
	}
	return m, input, func() { free(); m.Free() }, nil
}
