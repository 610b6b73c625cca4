package hookedmodel

import (
	"fmt"
	"reflect"
	"strings"
)

// The model is built from its config: the components copy what they need
// when they are made. So m.Cfg is read-only, and the switches TransformerLens
// lets a user flip after loading (its set_use_* methods) are methods here
// that update the components and the list of hook points with the config.
// A pass checks m.Cfg against the model's own copy first (one comparison
// of two structs, a few nanoseconds beside a pass) and fails naming any
// field that was changed, rather than run a model that ignores the change.

// Config returns a copy of the model's config.
func (m *HookedTransformer) Config() Config { return m.cfg }

// SetUseAttnResult switches blocks.{l}.attn.hook_result ([batch pos head
// d_model], each head's output) on or off, as TransformerLens's
// set_use_attn_result. Do not call it while a pass runs.
func (m *HookedTransformer) SetUseAttnResult(on bool) {
	m.setSwitch(func(c *Config) { c.UseAttnResult = on })
}

// SetUseSplitQKVInput switches blocks.{l}.hook_q_input, hook_k_input and
// hook_v_input ([batch pos head d_model]) on or off, as TransformerLens's
// set_use_split_qkv_input. Do not call it while a pass runs.
func (m *HookedTransformer) SetUseSplitQKVInput(on bool) {
	m.setSwitch(func(c *Config) { c.UseSplitQKVIn = on })
}

// SetUseHookMLPIn switches blocks.{l}.hook_mlp_in on or off, as
// TransformerLens's set_use_hook_mlp_in; an attention-only model has no
// MLP, so switching it on there is an error. Do not call it while a pass
// runs.
func (m *HookedTransformer) SetUseHookMLPIn(on bool) error {
	if on && m.cfg.AttnOnly {
		return fmt.Errorf("use_hook_mlp_in: the model is attn_only and has no MLP")
	}
	m.setSwitch(func(c *Config) { c.UseHookMLPIn = on })
	return nil
}

// SetUseAttnIn switches blocks.{l}.hook_attn_in ([batch pos head d_model])
// on or off, as TransformerLens's set_use_attn_in. Do not call it while a
// pass runs.
func (m *HookedTransformer) SetUseAttnIn(on bool) {
	m.setSwitch(func(c *Config) { c.UseAttnIn = on })
}

// flagSetters are the setters of the config flags that switch hook points
// on.
var flagSetters = map[string]string{
	"use_attn_result": "SetUseAttnResult", "use_split_qkv_input": "SetUseSplitQKVInput",
	"use_hook_mlp_in": "SetUseHookMLPIn", "use_attn_in": "SetUseAttnIn",
}

// enableHint says how to switch flag on, for errors about a hook point it
// switches off.
func enableHint(flag string) string {
	if s, ok := flagSetters[flag]; ok {
		return fmt.Sprintf("%s=true (m.%s(true), or in the config it is built from)", flag, s)
	}
	return flag + "=true in the config"
}

// setSwitch applies edit to the model's config and to m.Cfg (leaving any
// other change to m.Cfg for checkConfig to report), then to the blocks and
// the hook point list.
func (m *HookedTransformer) setSwitch(edit func(*Config)) {
	edit(&m.cfg)
	edit(&m.Cfg)
	for _, b := range m.Blocks {
		b.flags.attnIn, b.flags.splitQKV, b.flags.mlpIn = m.cfg.UseAttnIn, m.cfg.UseSplitQKVIn, m.cfg.UseHookMLPIn && b.MLP != nil
		b.Attn.useResult = m.cfg.UseAttnResult
	}
	m.listHookNames()
}

// checkConfig is the error of a model whose Cfg was changed after it was
// built, naming the changed fields by their JSON names.
func (m *HookedTransformer) checkConfig() error {
	if m.Cfg == m.cfg {
		return nil
	}
	var changed []string
	for _, f := range changedFields(m.Cfg, m.cfg) {
		changed = append(changed, fmt.Sprintf("%s (%v, was %v)", f.name, show(f.now), show(f.was)))
	}
	return fmt.Errorf("the model's Cfg was changed after the model was built: %s; Cfg is read-only "+
		"(the model does not follow it): switch hook points with SetUseAttnResult, SetUseSplitQKVInput, "+
		"SetUseHookMLPIn or SetUseAttnIn, and build a new model (New, Load) for anything else",
		strings.Join(changed, ", "))
}

func show(v reflect.Value) any {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "null"
		}
		return v.Elem().Interface()
	}
	if v.Kind() == reflect.String {
		return fmt.Sprintf("%q", v.String())
	}
	return v.Interface()
}

// attachTokenizer gives the model GPT-2's tokenizer, the one golens has,
// when tokenizer_name names it or d_vocab is its size.
func (m *HookedTransformer) attachTokenizer() {
	if t := m.cfg.tokenizer(); t != nil {
		m.Tokenizer = t
	}
}
