package hookedmodel

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// A hook or a names filter that selects no hook point is an error, as in
// TransformerLens, where a hook on a name the model lacks raises: a typo
// would otherwise run a pass that silently never calls the hook. The
// error names what was asked for and the nearest real hook points, or the
// config flag that enables a point this model has switched off.

// filterInfo is what a filter made by Name, Names or Regexp asks for: the
// exact names it lists and the expressions it matches.
type filterInfo struct {
	mu    sync.Mutex
	names []string
	exprs []string
}

// A Filter is a plain predicate, so what one made by Name, Names or
// Regexp asks for is learnt by asking it: called with a probe, a string no
// hook point has (it starts with a NUL byte), such a filter files what it
// selects under the probe and answers false. Other predicates just answer;
// a predicate that calls such filters (an "or" of two Names, say) files
// theirs.
const probePrefix = "\x00golens filter probe "

var (
	probeSeq atomic.Uint64
	probes   sync.Map // probe -> *filterInfo
)

func isProbe(s string) bool { return len(s) > 0 && s[0] == 0 && strings.HasPrefix(s, probePrefix) }

// fileProbe records names or an expression under probe s.
func fileProbe(s string, names []string, expr string) {
	v, ok := probes.Load(s)
	if !ok {
		return
	}
	fi := v.(*filterInfo)
	fi.mu.Lock()
	defer fi.mu.Unlock()
	fi.names = append(fi.names, names...)
	if expr != "" {
		fi.exprs = append(fi.exprs, expr)
	}
}

// describe asks f what it selects (see probePrefix).
func describe(f Filter) (names, exprs []string) {
	key := probePrefix + strconv.FormatUint(probeSeq.Add(1), 10)
	fi := &filterInfo{}
	probes.Store(key, fi)
	defer probes.Delete(key)
	func() {
		defer func() { _ = recover() }() // a predicate that fails on the probe describes nothing
		f(key)
	}()
	fi.mu.Lock()
	defer fi.mu.Unlock()
	return fi.names, fi.exprs
}

// matchAny reports whether f selects one of names; a panic in f is an
// error.
func matchAny(f Filter, names []string) (ok bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("the filter panicked: %v", v)
		}
	}()
	return slices.ContainsFunc(names, f), nil
}

// hookWhat names a hook in errors: "fwd hook", `bwd hook "label"`.
func hookWhat(h Hook) string {
	if h.Label != "" {
		return fmt.Sprintf("%s hook %q", h.Dir, h.Label)
	}
	return h.Dir.String() + " hook"
}

// checkHook is the error of a hook that cannot run on this model: a
// missing function or filter, a name it lists that is no hook point, or a
// filter that selects none.
func (m *HookedTransformer) checkHook(h Hook) error {
	what := hookWhat(h)
	if h.Filter == nil || h.Fn == nil {
		return fmt.Errorf("%s: the filter and the function must be set", what)
	}
	return m.checkFilter(what, h.Filter)
}

// checkFilter is the error of a filter (of a hook, or the names filter of
// a cache) that lists a name that is no hook point of the model, or
// selects none.
func (m *HookedTransformer) checkFilter(what string, f Filter) error {
	names, exprs := describe(f)
	for _, n := range names {
		if !slices.Contains(m.hookNames, n) {
			return m.unknownPoint(what, n)
		}
	}
	ok, err := matchAny(f, m.hookNames)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if ok {
		return nil
	}
	return m.noMatch(what, f, exprs)
}

// disabledPoint is a hook point TransformerLens has that this model's
// config switches off, and the flag that switches it on.
type disabledPoint struct{ name, flag string }

// disabledPoints lists the model's switched-off hook points in forward
// order.
func (m *HookedTransformer) disabledPoints() []disabledPoint {
	var d []disabledPoint
	if !m.Cfg.UseHookTokens {
		d = append(d, disabledPoint{m.hooksTop.tokens, "use_hook_tokens"})
	}
	for _, b := range m.Blocks {
		h := &b.hooks
		if !b.flags.attnIn {
			d = append(d, disabledPoint{h.attnIn, "use_attn_in"})
		}
		if !b.flags.splitQKV {
			for _, n := range []string{h.qIn, h.kIn, h.vIn} {
				d = append(d, disabledPoint{n, "use_split_qkv_input"})
			}
		}
		if !b.Attn.useResult {
			d = append(d, disabledPoint{b.Attn.hooks.result, "use_attn_result"})
		}
		if b.MLP != nil && !b.flags.mlpIn {
			d = append(d, disabledPoint{h.mlpIn, "use_hook_mlp_in"})
		}
	}
	return d
}

// unknownPoint is the error of a filter that asks for name, which is no
// hook point of the model.
func (m *HookedTransformer) unknownPoint(what, name string) error {
	for _, d := range m.disabledPoints() {
		if d.name == name {
			return fmt.Errorf("%s: hook point %q is off in this model: it needs %s", what, name, enableHint(d.flag))
		}
	}
	extra := ""
	if l, ok := blockIndex(name); ok && l >= len(m.Blocks) {
		extra = fmt.Sprintf(" (it has %d layers, blocks.0 to blocks.%d)", len(m.Blocks), len(m.Blocks)-1)
	}
	near := nearest(name, m.hookNames, 3)
	if !strings.Contains(name, ".") {
		// A shorthand ("embed", "pattern"): the names GetActName makes of it
		// come first.
		var short []string
		for _, args := range [][]any{nil, {0}} {
			if full, err := GetActName(name, args...); err == nil && slices.Contains(m.hookNames, full) {
				short = append(short, full)
			}
		}
		near = append(short, slices.DeleteFunc(near, func(n string) bool { return slices.Contains(short, n) })...)[:min(3, len(short)+len(near))]
	}
	return fmt.Errorf("%s: no hook point %q in this model%s; nearest: %s", what, name, extra, strings.Join(near, ", "))
}

// noMatch is the error of a filter that selects no hook point.
func (m *HookedTransformer) noMatch(what string, f Filter, exprs []string) error {
	desc := "its filter"
	if len(exprs) > 0 {
		desc = "its regexp " + strconv.Quote(strings.Join(exprs, "|"))
	}
	var off, flags []string
	for _, d := range m.disabledPoints() {
		if ok, _ := matchAny(f, []string{d.name}); ok {
			off = append(off, d.name)
			if !slices.Contains(flags, d.flag) {
				flags = append(flags, d.flag)
			}
		}
	}
	if len(off) > 0 {
		if len(off) > 3 {
			off = append(off[:3], "...")
		}
		verb := "is"
		if len(off) > 1 {
			verb = "are"
		}
		hints := make([]string, len(flags))
		for i, f := range flags {
			hints[i] = enableHint(f)
		}
		return fmt.Errorf("%s: %s selects no hook point of this model, only %s, which %s off: it needs %s",
			what, desc, strings.Join(off, ", "), verb, strings.Join(hints, "; "))
	}
	hint := "; HookNames lists them"
	if len(exprs) > 0 {
		hint = "; nearest: " + strings.Join(nearest(regexpText(strings.Join(exprs, "|")), m.hookNames, 3), ", ")
	}
	return fmt.Errorf("%s: %s selects no hook point of this model (of %d)%s", what, desc, len(m.hookNames), hint)
}

var blockRe = regexp.MustCompile(`^blocks\.(\d+)\.`)

// blockIndex is the layer of a blocks.{l}.* name.
func blockIndex(name string) (int, bool) {
	mm := blockRe.FindStringSubmatch(name)
	if mm == nil {
		return 0, false
	}
	l, err := strconv.Atoi(mm[1])
	return l, err == nil
}

// regexpText is a regular expression less its anchors and escapes, to
// compare with names.
func regexpText(expr string) string {
	return strings.NewReplacer("^", "", "$", "", `\`, "").Replace(expr)
}

// nearest is the k names closest to s in edit distance, closest first
// (ties in the names' order).
func nearest(s string, names []string, k int) []string {
	type cand struct {
		name string
		d    int
	}
	cs := make([]cand, len(names))
	for i, n := range names {
		cs[i] = cand{n, editDistance(s, n)}
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return a.d - b.d })
	var out []string
	for _, c := range cs[:min(k, len(cs))] {
		out = append(out, c.name)
	}
	return out
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
