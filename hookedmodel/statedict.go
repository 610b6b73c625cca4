package hookedmodel

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel/safefile"
	"github.com/golens/golens/hookedmodel/weights"
)

// StateDict returns every weight under its TransformerLens name and in its
// TransformerLens shape (embed.W_E, blocks.0.attn.W_Q [n_heads d_model
// d_head], blocks.0.mlp.W_in [d_model d_mlp], unembed.W_U [d_model
// d_vocab_out], ...). The tensors are views of the model's weights, given
// to the caller in a new scope that the caller closes (not lent: ops on
// them join that scope, by gotch's rule, and go when it closes); writing
// into them in place changes the model.
// TransformerLens's state_dict() also holds each attention layer's
// buffers, mask and IGNORE; SaveStateDict writes them.
func (m *HookedTransformer) StateDict() (map[string]*gotch.Tensor, *gotch.Scope, error) {
	if m == nil {
		return nil, nil, errors.New("state dict: nil model")
	}
	s := gotch.NewScope()
	sd := map[string]*gotch.Tensor{}
	err := gotch.Try(func() {
		m.tlTree().walk("", func(prefix string, mod *tlModule) {
			for _, p := range mod.params {
				sd[prefix+p.name] = p.view(s)
			}
		})
	})
	if err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("state dict: %w", err)
	}
	return sd, s, nil
}

// StateDictOption configures LoadStateDict and LoadStateDictFile.
type StateDictOption func(*stateDictOptions)

type stateDictOptions struct{ lenient bool }

// Strict(false) loads as load_state_dict(strict=False) does: weights the
// state dict lacks keep their values, and keys the model has no place for
// are ignored. Shapes must match either way, and a state dict holding
// none of the model's weights is still an error. The default is strict.
func Strict(on bool) StateDictOption { return func(o *stateDictOptions) { o.lenient = !on } }

// LoadStateDict sets the model's weights from sd, a state dict in
// TransformerLens's names and shapes, as model.load_state_dict(sd) does
// for a HookedTransformer of the same config: one from Python's
// model.state_dict(), from StateDict or from LoadStateDictFile's file.
// Each tensor is converted to the model's dtype and device; integer and
// bool tensors are refused. Every key is checked before any weight
// changes, so a load that fails leaves the model as it was. Strict (the
// default) refuses missing and unexpected keys, naming them.
//
// The buffers blocks.{l}.attn.mask and .IGNORE are constants golens does
// not store: they may be absent (as in a state dict made by hand), and
// when present must be what golens computes (the causal mask, as [n_ctx
// n_ctx] or TransformerLens 3.5's empty [0 0]; -inf), since a model
// holding others would compute something else.
//
// from_pretrained's state dicts have no LayerNorm weights (fold_ln makes
// normalization_type LNPre); from_pretrained_no_processing's have them.
// Load each into a model of the config it came with: the error for a
// mismatch says which. The weights replace the model's whole, so its
// ProcessingRecord is emptied; Process may follow. Do not load while a
// pass runs on the model.
func (m *HookedTransformer) LoadStateDict(sd map[string]*gotch.Tensor, opts ...StateDictOption) error {
	if m == nil {
		return errors.New("load state dict: nil model")
	}
	if err := m.loadStateDict(sd, opts); err != nil {
		return fmt.Errorf("load state dict: %w", err)
	}
	return nil
}

func (m *HookedTransformer) loadStateDict(sd map[string]*gotch.Tensor, opts []StateDictOption) error {
	var o stateDictOptions
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if len(sd) == 0 {
		return errors.New("the state dict is empty")
	}
	type load struct {
		p   tlParam
		src *gotch.Tensor
	}
	var loads []load
	var missing, problems []string
	known := map[string]bool{}
	s := gotch.NewScope()
	defer s.Close()
	bad := func(key string, t *gotch.Tensor) string {
		switch {
		case t == nil:
			return key + ": nil tensor"
		case t.Freed():
			return key + ": freed tensor"
		case !t.DType().IsFloat():
			return fmt.Sprintf("%s: dtype %s; want a floating-point type", key, t.DType())
		}
		return ""
	}
	m.tlTree().walk("", func(prefix string, mod *tlModule) {
		for _, p := range mod.params {
			key := prefix + p.name
			known[key] = true
			t, ok := sd[key]
			if !ok {
				missing = append(missing, key)
				continue
			}
			if msg := bad(key, t); msg != "" {
				problems = append(problems, msg)
			} else if !slices.Equal(t.Shape(), p.shape) {
				problems = append(problems, fmt.Sprintf("%s: shape %v in the state dict, %v in the model", key, t.Shape(), p.shape))
			} else {
				loads = append(loads, load{p, t})
			}
		}
		for _, b := range mod.buffers {
			key := prefix + b.name
			known[key] = true
			t, ok := sd[key]
			if !ok {
				continue
			}
			if t == nil || t.Freed() {
				problems = append(problems, bad(key, t))
				continue
			}
			var err error
			if terr := gotch.Try(func() { err = b.check(s, t) }); terr != nil {
				err = terr
			}
			if err != nil {
				problems = append(problems, fmt.Sprintf("buffer %s: %v", key, err))
			}
		}
	})
	var unexpected []string
	for k := range sd {
		if !known[k] {
			unexpected = append(unexpected, k)
		}
	}
	slices.Sort(unexpected)
	if o.lenient {
		missing, unexpected = nil, nil
	}
	if len(missing)+len(unexpected)+len(problems) > 0 {
		return m.keyError(missing, unexpected, problems)
	}
	if len(loads) == 0 {
		return errors.New("the state dict holds none of the model's weights")
	}

	// Convert everything first: an error here leaves the model untouched.
	if err := gotch.Try(func() {
		for i, l := range loads {
			loads[i].src = borrow(s, l.src).MustToDevice(m.device, false).MustTo(m.dtype)
		}
	}); err != nil {
		return err
	}
	err := gotch.NoGrad(func() error {
		return gotch.Try(func() {
			for _, l := range loads {
				l.p.view(s).MustCopy_(l.src)
			}
		})
	})
	m.processed = ProcessingRecord{}
	// As in Process: the stacked views of the old weights go, and prepare
	// runs outside NoGrad so the views it remakes record gradients when
	// the weights do.
	if perr := gotch.Try(m.prepare); err == nil {
		err = perr
	}
	return err
}

// lnKey matches the LayerNorm weights fold_ln removes.
var lnKey = regexp.MustCompile(`(^|\.)(ln1|ln2|ln_final|mlp\.ln)\.[wb]$`)

// keyError reports missing and unexpected keys as load_state_dict does,
// and what a LayerNorm mismatch means.
func (m *HookedTransformer) keyError(missing, unexpected, problems []string) error {
	list := func(keys []string) string {
		if len(keys) > 8 {
			return strings.Join(keys[:8], ", ") + fmt.Sprintf(" and %d more", len(keys)-8)
		}
		return strings.Join(keys, ", ")
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing keys: "+list(missing))
	}
	if len(unexpected) > 0 {
		parts = append(parts, "unexpected keys: "+list(unexpected))
	}
	parts = append(parts, problems...)
	allLN := func(keys []string) bool {
		return len(keys) > 0 && !slices.ContainsFunc(keys, func(k string) bool { return !lnKey.MatchString(k) })
	}
	switch {
	case allLN(missing) && len(unexpected) == 0:
		parts = append(parts, "the state dict has no LayerNorm weights, as from_pretrained's (fold_ln) have none, "+
			`but the model's normalization_type is "LN": load it into a model with normalization_type "LNPre", `+
			"or load a state dict from from_pretrained_no_processing")
	case allLN(unexpected) && len(missing) == 0:
		parts = append(parts, fmt.Sprintf("the state dict has LayerNorm weights (as from_pretrained_no_processing's), "+
			"but the model's normalization_type is %q, with none: load it into a model with normalization_type \"LN\"", m.Cfg.NormalizationType))
	}
	return errors.New(strings.Join(parts, "; "))
}

// LoadStateDictFile loads a state dict file into the model as
// LoadStateDict does: a safetensors file (Python's
// safetensors.torch.save_file(model.state_dict(), path), or
// SaveStateDict's) or a torch file (torch.save(model.state_dict(), path)).
func (m *HookedTransformer) LoadStateDictFile(path string, opts ...StateDictOption) error {
	if m == nil {
		return errors.New("load state dict: nil model")
	}
	if err := m.loadStateDictFile(path, opts); err != nil {
		return fmt.Errorf("load state dict %q: %w", path, err)
	}
	return nil
}

func (m *HookedTransformer) loadStateDictFile(path string, opts []StateDictOption) error {
	if path == "" {
		return errors.New("no path")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w; want a state dict file (.safetensors or a torch file)", &safefile.NotRegularError{Path: path, Mode: fi.Mode(), Op: "read"})
	}
	ck, err := weights.Open(path)
	if err != nil {
		return err
	}
	defer ck.Close()
	if _, ok := ck.Metadata()[golensConfigKey]; ok {
		return errors.New("this is a golens checkpoint written by Save, in golens's own layout: open it with Load")
	}
	s := gotch.NewScope()
	defer s.Close()
	sd := map[string]*gotch.Tensor{}
	for _, k := range ck.Keys() {
		w, err := ck.Get(k)
		if err != nil {
			return err
		}
		dt, ok := wdtypes[w.DType]
		if !ok {
			return fmt.Errorf("%s: dtype %s is not one golens reads", k, w.DType)
		}
		t, err := gotch.FromBytes(w.Data, w.Shape, dt, gotch.CPU)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		sd[k] = s.Attach(t)
	}
	return m.loadStateDict(sd, opts)
}

// SaveStateDict writes the model's state dict in TransformerLens's names
// and shapes, as safetensors.torch.save_file(model.state_dict(), path)
// does for a HookedTransformer of the same config (Config): the weights
// in the model's dtype, and each attention layer's mask and IGNORE
// buffers, which Python's strict model.load_state_dict needs. The file is
// written beside path and renamed over it once complete (safefile.Write):
// path must be a new file, a regular file or a link to one.
func (m *HookedTransformer) SaveStateDict(path string) error {
	if m == nil {
		return errors.New("save state dict: nil model")
	}
	if path == "" {
		return errors.New("save state dict: no path")
	}
	s := gotch.NewScope()
	defer s.Close()
	var names []string
	ts := map[string]*gotch.Tensor{}
	err := gotch.Try(func() {
		m.tlTree().walk("", func(prefix string, mod *tlModule) {
			for _, p := range mod.params {
				names = append(names, prefix+p.name)
				ts[prefix+p.name] = p.view(s)
			}
			for _, b := range mod.buffers {
				names = append(names, prefix+b.name)
				ts[prefix+b.name] = b.value(s)
			}
		})
	})
	if err == nil {
		// "format": "pt" is what transformers' save_pretrained writes.
		err = WriteSafetensors(path, names, ts, map[string]string{"format": "pt"})
	}
	if err != nil {
		return fmt.Errorf("save state dict %q: %w", path, err)
	}
	return nil
}
