package hookedmodel

import (
	"fmt"
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
// (utils.get_act_name) into a full hook-point name: layer < 0 means none,
// layerType may be empty. A name that already contains a dot is returned
// as it is.
//
//	GetActName("pattern", 0, "")    // "blocks.0.attn.hook_pattern"
//	GetActName("resid_pre", 3, "")  // "blocks.3.hook_resid_pre"
//	GetActName("q", 0, "attn")      // "blocks.0.attn.hook_q"
//	GetActName("scale", 2, "ln1")   // "blocks.2.ln1.hook_scale"
//	GetActName("scale", -1, "")     // "ln_final.hook_scale"
//	GetActName("k6", -1, "")        // "blocks.6.attn.hook_k"
func GetActName(name string, layer int, layerType string) (string, error) {
	if strings.Contains(name, ".") {
		return name, nil
	}
	if name == "" {
		return "", fmt.Errorf("get act name: empty name")
	}
	if m := shorthandRe.FindStringSubmatch(name); m != nil && layer < 0 {
		l, err := strconv.Atoi(m[2])
		if err != nil {
			return "", fmt.Errorf("get act name %q: bad layer: %w", name, err)
		}
		name, layer, layerType = m[1], l, m[3]
	}
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
	if layer >= 0 {
		full = fmt.Sprintf("blocks.%d.", layer)
	}
	if layerType != "" {
		full += layerType + "."
	}
	full += "hook_" + name
	if (name == "scale" || name == "normalized") && layer < 0 {
		full = "ln_final." + full
	}
	return full, nil
}

// posDim is the position dimension of a hook point's activation: the query
// dimension for attention scores and patterns, dimension 1 for the rest.
func posDim(name string) int {
	if strings.HasSuffix(name, "hook_pattern") || strings.HasSuffix(name, "hook_attn_scores") {
		return 2
	}
	return 1
}
