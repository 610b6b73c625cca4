package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/golens/golens/backend"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/safefile"
	"github.com/golens/golens/hookedmodel/tokenizer"
	"github.com/golens/golens/models"
	"github.com/spf13/cobra"
)

// modelFlags are the flags of every command that loads a model.
type modelFlags struct {
	model          string
	device         string
	dtype          string
	noProcessing   bool
	allowNonFinite bool
	set            []string
	revision       string
	ckIndex        int
	ckValue        int
}

func (f *modelFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.model, "model", "", "checkpoint directory or file, a model shipped in golens ("+strings.Join(models.Names(), ", ")+"), a TransformerLens name (gpt2, pythia-70m, meta-llama/Llama-3.2-1B, ...) or a hub repository org/name, from the Hugging Face cache or downloaded (HF_TOKEN for gated ones)")
	fl.StringVar(&f.revision, "revision", "", "branch, tag or commit of the model's hub repository (default main)")
	fl.IntVar(&f.ckIndex, "checkpoint-index", 0, "training checkpoint by index, as from_pretrained's checkpoint_index (Pythia, Stanford CRFM GPT-2s)")
	fl.IntVar(&f.ckValue, "checkpoint-value", 0, "training checkpoint by step, as from_pretrained's checkpoint_value (Pythia's 1000 is revision step1000)")
	fl.StringVar(&f.device, "device", "auto", "auto, cpu, cuda, cuda:N or mps")
	fl.StringVar(&f.dtype, "dtype", "", "float32 (default), float16, bfloat16 or float64, as the device supports")
	fl.BoolVar(&f.noProcessing, "no-processing", false, "load the weights as they are (from_pretrained_no_processing)")
	fl.BoolVar(&f.allowNonFinite, "allow-nonfinite", false, "load weights holding NaN or infinite values (refused otherwise)")
	fl.StringSliceVar(&f.set, "set", nil, "config overrides key=value[,key=value], e.g. use_attn_result=true; one the loaded weights cannot take is an error")
	cmd.MarkFlagRequired("model")
}

// load resolves the device and loads the model with the flags' options,
// in a dtype the device runs.
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
		d, err := parseDType(f.dtype)
		if err != nil {
			return nil, err
		}
		if err := dtypeRuns(b, d); err != nil {
			return nil, fmt.Errorf("--dtype %s: %w", f.dtype, err)
		}
		opts = append(opts, hookedmodel.WithDType(d))
	}
	if f.noProcessing {
		opts = append(opts, hookedmodel.NoProcessing())
	}
	if f.allowNonFinite {
		opts = append(opts, hookedmodel.AllowNonFinite())
	}
	if f.revision != "" {
		opts = append(opts, hookedmodel.WithRevision(f.revision))
	}
	if cmd.Flags().Changed("checkpoint-index") {
		opts = append(opts, hookedmodel.WithCheckpointIndex(f.ckIndex))
	}
	if cmd.Flags().Changed("checkpoint-value") {
		opts = append(opts, hookedmodel.WithCheckpointValue(f.ckValue))
	}
	m, err := loadModel(cmd.Context(), f.model, opts...)
	if errors.Is(err, hookedmodel.ErrNonFinite) {
		return nil, fmt.Errorf("%w (--allow-nonfinite loads it anyway)", err)
	}
	if err != nil {
		return nil, err
	}
	if f.dtype == "" { // the checkpoint's own dtype
		if err := dtypeRuns(b, m.DType()); err != nil {
			m.Free()
			return nil, fmt.Errorf("the model's dtype: %w; choose another with --dtype", err)
		}
	}
	return m, nil
}

// parseDType is the --dtype value s as a gotch.DType: torch's name of a
// floating-point type (or an alias gotch.ParseDType knows).
func parseDType(s string) (gotch.DType, error) {
	d, err := gotch.ParseDType(s)
	if err != nil || !d.IsFloat() {
		return 0, fmt.Errorf("--dtype %q: want float32, float64, float16 or bfloat16", s)
	}
	return d, nil
}

// dtypeRuns says why the device b cannot run a forward pass in dt (libtorch
// 1.13 has no float16 matmul on the CPU, for one), naming the dtypes it can.
func dtypeRuns(b *backend.Backend, dt gotch.DType) error {
	err := b.Supports(dt)
	if err == nil {
		return nil
	}
	var runs []string
	for _, s := range b.Capabilities().DTypes {
		if s.Full() {
			runs = append(runs, s.DType.String())
		}
	}
	return fmt.Errorf("%w; %s runs %s", err, b.Device(), strings.Join(runs, ", "))
}

// loadModel loads what --model names: a checkpoint directory or file, a
// model shipped in the binary (models.Names; a file of that name wins), or
// a model name (TransformerLens's, or a hub repository). An unknown name's
// error lists the shipped names too.
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

// configEdits turns --set key=value pairs into a config edit. Every field
// of hookedmodel.Config is a key, by its JSON name; each value is checked
// against its field's type here, and against the model when it loads
// (which refuses a change its weights cannot take, saying why).
func configEdits(pairs []string) (func(*hookedmodel.Config), error) {
	type setting struct {
		index int
		value reflect.Value
	}
	var set []setting
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--set %q: want key=value", kv)
		}
		f, ok := configField(k)
		if !ok {
			return nil, fmt.Errorf("--set: unknown config field %q (the fields: %s)", k, strings.Join(configKeys(), ", "))
		}
		val, err := parseSetting(f.Type, v)
		if err != nil {
			return nil, fmt.Errorf("--set %s=%q: %w", k, v, err)
		}
		set = append(set, setting{f.Index[0], val})
	}
	return func(c *hookedmodel.Config) {
		for _, s := range set {
			reflect.ValueOf(c).Elem().Field(s.index).Set(s.value)
		}
	}, nil
}

// configKeys are the JSON names of hookedmodel.Config's fields: the keys
// --set takes.
func configKeys() []string {
	var keys []string
	t := reflect.TypeFor[hookedmodel.Config]()
	for i := range t.NumField() {
		if name := jsonName(t.Field(i)); name != "" {
			keys = append(keys, name)
		}
	}
	return keys
}

// configField is the field of hookedmodel.Config whose JSON name is key.
func configField(key string) (reflect.StructField, bool) {
	t := reflect.TypeFor[hookedmodel.Config]()
	for i := range t.NumField() {
		if f := t.Field(i); key != "" && jsonName(f) == key { // "" is an unexported field's
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// parseSetting reads a --set value as JSON of type t: a bare word is a
// string, and null (Python's None) is "" for a string and nil for a
// pointer, as in TransformerLens's configs.
func parseSetting(t reflect.Type, v string) (reflect.Value, error) {
	val := reflect.New(t)
	if u, ok := val.Interface().(json.Unmarshaler); ok && t.Kind() == reflect.String {
		// a string kept in its own JSON form (attn_types: a list)
		if err := u.UnmarshalJSON([]byte(v)); err != nil {
			return val, fmt.Errorf("want JSON: %w", err)
		}
		return val.Elem(), nil
	}
	switch {
	case t.Kind() == reflect.String:
		if v == "null" {
			return val.Elem(), nil
		}
		if json.Unmarshal([]byte(v), val.Interface()) != nil { // not a quoted JSON string
			val.Elem().SetString(v)
		}
		return val.Elem(), nil
	case v == "null" && t.Kind() == reflect.Pointer:
		return val.Elem(), nil
	}
	if v != "null" && json.Unmarshal([]byte(v), val.Interface()) == nil {
		return val.Elem(), nil
	}
	switch k := t.Kind(); {
	case k == reflect.Bool:
		return val, errors.New("want true or false")
	case k == reflect.Pointer:
		return val, errors.New("want a whole number or null")
	case k == reflect.Float64:
		return val, errors.New("want a finite number")
	default:
		return val, errors.New("want a whole number")
	}
}

// inputFlags choose what a command runs the model on.
type inputFlags struct {
	prompt     string
	tokensFile string
	truncate   bool
}

func (f *inputFlags) register(cmd *cobra.Command, required bool) {
	f.registerInput(cmd, required)
	cmd.Flags().BoolVar(&f.truncate, "truncate", false, "keep the first n_ctx tokens of a longer input, as TransformerLens's to_tokens(truncate=True) does (a longer input is an error without it)")
}

// registerInput registers --prompt and --tokens-file only (generate keeps
// its whole prompt: it has no --truncate).
func (f *inputFlags) registerInput(cmd *cobra.Command, required bool) {
	cmd.Flags().StringVar(&f.prompt, "prompt", "", "text to run on (tokenized with BOS first)")
	cmd.Flags().StringVar(&f.tokensFile, "tokens-file", "", "JSON file: an array of equal-length arrays of token ids")
	if required {
		cmd.MarkFlagsOneRequired("prompt", "tokens-file")
	}
	cmd.MarkFlagsMutuallyExclusive("prompt", "tokens-file")
}

func (f *inputFlags) given() bool { return f.prompt != "" || f.tokensFile != "" }

// rows is the input as token ids, one row per sequence, and the flag that
// gave it: the prompt tokenized as TransformerLens's to_tokens does (BOS
// first unless the config's default_prepend_bos is off), or the tokens
// file's rows; never cut to the model's context.
func (f *inputFlags) rows(m *hookedmodel.HookedTransformer) ([][]int64, string, error) {
	if f.tokensFile != "" {
		rows, err := readTokensFile(f.tokensFile)
		return rows, "--tokens-file", err
	}
	if m.Tokenizer == nil {
		return nil, "", fmt.Errorf("--prompt: model %s has no tokenizer: its inputs are token ids", m.Cfg.ModelName)
	}
	rows, _, err := m.Tokenizer.ToTokens([]string{f.prompt}, tokenizer.PrependBOS(m.Cfg.DefaultPrependBOS))
	return rows, "--prompt", err
}

// tokens is the input as a [batch pos] tensor on the model's device; one
// longer than the model's context is an error unless --truncate, which
// keeps each row's first n_ctx tokens.
func (f *inputFlags) tokens(m *hookedmodel.HookedTransformer) (*gotch.Tensor, error) {
	rows, flag, err := f.rows(m)
	if err != nil {
		return nil, err
	}
	if n, nCtx := len(rows[0]), m.Cfg.NCtx; n > nCtx {
		if !f.truncate {
			return nil, fmt.Errorf("%s: %d tokens exceed the model's context of n_ctx=%d (--truncate keeps the first %d)", flag, n, nCtx, nCtx)
		}
		for i := range rows {
			rows[i] = rows[i][:nCtx]
		}
	}
	return tensorOf(rows, m.Device())
}

// tensorOf makes a [len(rows) len(rows[0])] tensor of equally long rows on
// dev.
func tensorOf(rows [][]int64, dev gotch.Device) (*gotch.Tensor, error) {
	flat := make([]int64, 0, len(rows)*len(rows[0]))
	for _, r := range rows {
		flat = append(flat, r...)
	}
	return gotch.FromSlice(flat, []int64{int64(len(rows)), int64(len(rows[0]))}, dev)
}

// readTokensFile reads a tokens file: a JSON array of equally long arrays
// of token ids.
func readTokensFile(path string) ([][]int64, error) {
	b, err := safefile.Read(path, safefile.TokensLimit)
	if err != nil {
		return nil, err
	}
	var rows [][]int64
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, fmt.Errorf("%q: want a JSON array of arrays of token ids: %w", path, err)
	}
	if len(rows) == 0 || len(rows[0]) == 0 {
		return nil, fmt.Errorf("%q: no tokens", path)
	}
	for i, r := range rows {
		if len(r) != len(rows[0]) {
			return nil, fmt.Errorf("%q: row %d has %d tokens, row 0 has %d (rows must be equally long)", path, i, len(r), len(rows[0]))
		}
	}
	return rows, nil
}

// loadWithInput loads the model and reads the input onto its device; done
// frees both.
func loadWithInput(cmd *cobra.Command, mf *modelFlags, in *inputFlags) (*hookedmodel.HookedTransformer, hookedmodel.Input, func(), error) {
	m, err := mf.load(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	t, err := in.tokens(m)
	if err != nil {
		m.Free()
		return nil, nil, nil, err
	}
	return m, hookedmodel.Tokens(t), func() { t.Free(); m.Free() }, nil
}
