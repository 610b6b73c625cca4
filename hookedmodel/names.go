package hookedmodel

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

var (
	actAliases       = map[string]string{"attn": "pattern", "attn_logits": "attn_scores", "key": "k", "query": "q", "value": "v", "mlp_pre": "pre", "mlp_mid": "mid", "mlp_post": "post"}
	layerTypeAliases = map[string]string{"a": "attn", "m": "mlp", "b": "", "block": "", "blocks": "", "attention": "attn"}
	attnActs         = map[string]bool{"k": true, "v": true, "q": true, "z": true, "rot_k": true, "rot_q": true, "result": true, "pattern": true, "attn_scores": true}
	mlpActs          = map[string]bool{"pre": true, "post": true, "mid": true, "pre_linear": true}
	shorthandRe      = regexp.MustCompile(`^([a-z_]+?)(\d+)([a-z]?.*)$`)
)

// GetActName expands TransformerLens's activation shorthand
// (utils.get_act_name) into a full hook-point name. args are
// get_act_name's optional layer (an integer, or nil for none) and layer
// type (a string: "attn", "mlp", "ln1", "ln2", "ln_final", or an alias such
// as "a", "m", "b"). A full name (one with a dot, or starting with hook_)
// comes back as it is. Anything else is an error naming the arguments: a
// third argument, a layer that is not an integer, a layer type that is not
// a string, a full name or a name with its layer in it ("k6") given a
// layer too, and a negative layer, which counts from the end only where
// the model is known (ActivationCache.Get).
//
//	GetActName("pattern", 0)        // "blocks.0.attn.hook_pattern"
//	GetActName("resid_pre", 3)      // "blocks.3.hook_resid_pre"
//	GetActName("q", 0, "attn")      // "blocks.0.attn.hook_q"
//	GetActName("scale", 2, "ln1")   // "blocks.2.ln1.hook_scale"
//	GetActName("scale")             // "ln_final.hook_scale"
//	GetActName("embed")             // "hook_embed"
//	GetActName("k6")                // "blocks.6.attn.hook_k"
//	GetActName("scale4ln1")         // "blocks.4.ln1.hook_scale"
func GetActName(name string, args ...any) (string, error) {
	k, err := parseActKey("GetActName", name, args)
	if err != nil {
		return "", err
	}
	if k.hasLayer && k.layer < 0 {
		return "", fmt.Errorf("%s: layer %d counts from the end, which only a model knows: use ActivationCache.Get, or layer + n_layers", k.call, k.layer)
	}
	return k.expand(), nil
}

// actKey is TransformerLens's (name, layer, layer_type) key of an
// activation, as GetActName and ActivationCache.Get take it.
type actKey struct {
	call      string // the call, for errors: `Get("q", 0, 1)`
	name      string
	full      bool // name is a full hook-point name
	layer     int
	hasLayer  bool
	layerType string
}

// parseActKey reads name and args as get_act_name reads its arguments,
// rejecting what it would not make a hook-point name of.
func parseActKey(fn, name string, args []any) (actKey, error) {
	k := actKey{call: callString(fn, name, args), name: name}
	if name == "" {
		return k, fmt.Errorf("%s: empty name", k.call)
	}
	if len(args) > 2 {
		return k, fmt.Errorf("%s: %d arguments after the name; it takes at most a layer and a layer type, as (name, layer, layer_type)", k.call, len(args))
	}
	if len(args) > 0 && args[0] != nil {
		l, ok := asInt(args[0])
		if !ok {
			return k, fmt.Errorf("%s: the layer must be an integer (or nil for none), got %T %v", k.call, args[0], args[0])
		}
		k.layer, k.hasLayer = l, true
	}
	if len(args) > 1 && args[1] != nil {
		lt, ok := args[1].(string)
		if !ok {
			return k, fmt.Errorf("%s: the layer type must be a string such as \"attn\", \"mlp\" or \"ln1\", got %T %v", k.call, args[1], args[1])
		}
		k.layerType = lt
	}
	if strings.Contains(name, ".") || strings.HasPrefix(name, "hook_") {
		if k.hasLayer || k.layerType != "" {
			return k, fmt.Errorf("%s: %q is a full hook-point name, which takes no layer or layer type", k.call, name)
		}
		k.full = true
		return k, nil
	}
	if m := shorthandRe.FindStringSubmatch(name); m != nil {
		if k.hasLayer || k.layerType != "" {
			return k, fmt.Errorf("%s: %q has its layer in it already; give the layer once", k.call, name)
		}
		l, err := strconv.Atoi(m[2])
		if err != nil {
			return k, fmt.Errorf("%s: bad layer in %q: %w", k.call, name, err)
		}
		k.name, k.layer, k.hasLayer, k.layerType = m[1], l, true, m[3]
	}
	return k, nil
}

// expand is get_act_name's full name for k.
func (k actKey) expand() string {
	if k.full {
		return k.name
	}
	name, layerType := k.name, k.layerType
	if a, ok := actAliases[name]; ok {
		name = a
	}
	switch {
	case attnActs[name]:
		layerType = "attn"
	case mlpActs[name]:
		layerType = "mlp"
	default:
		if a, ok := layerTypeAliases[layerType]; ok {
			layerType = a
		}
	}
	full := ""
	if k.hasLayer {
		full = fmt.Sprintf("blocks.%d.", k.layer)
	}
	if layerType != "" {
		full += layerType + "."
	}
	full += "hook_" + name
	if (name == "scale" || name == "normalized") && !k.hasLayer {
		full = "ln_final." + full
	}
	return full
}

// asInt is v as an int, if v is an integer that fits.
func asInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int8:
		return int(x), true
	case int16:
		return int(x), true
	case int32:
		return int(x), true
	case int64:
		return int(x), int64(int(x)) == x
	case uint:
		return int(x), int(x) >= 0
	case uint8:
		return int(x), true
	case uint16:
		return int(x), true
	case uint32:
		return int(x), int64(x) <= math.MaxInt
	case uint64:
		return int(x), x <= math.MaxInt
	}
	return 0, false
}

// callString writes a call as Go source: fn("q", 0, 1).
func callString(fn, name string, args []any) string {
	parts := []string{strconv.Quote(name)}
	for _, a := range args {
		if s, ok := a.(string); ok {
			parts = append(parts, strconv.Quote(s))
		} else if a == nil {
			parts = append(parts, "nil")
		} else {
			parts = append(parts, fmt.Sprint(a))
		}
	}
	return fn + "(" + strings.Join(parts, ", ") + ")"
}

// posDim is the position dimension of a hook point's activation: the query
// dimension for attention scores and patterns, dimension 1 for the rest.
func posDim(name string) int {
	if strings.HasSuffix(name, "hook_pattern") || strings.HasSuffix(name, "hook_attn_scores") {
		return 2
	}
	return 1
}
