package analysis

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
	"github.com/schollz/progressbar/v3"
)

// Option configures an analysis. Each entry point reads the options its
// doc lists; passing it any other is an error naming the option and the
// entry point, where an ignored option would silently change nothing. A
// nil Option is ignored.
type Option func(*options)

// optionSet is a set of options, one bit each: the options an entry point
// reads, or those a call was given.
type optionSet uint32

const (
	optProgress optionSet = 1 << iota
	optSeed
	optExcludeBOS
	optExcludeCurrent
	optErrorMeasure
	optOnlyHeads
	optSeqLen
	optBatchSize
	optBOS
	optTokenRange
	optReference
	optMetric
	optCleanCache
	optAtPosition
	optTopK
	optPrependBOS
	optAnswerSpace
	optBaselineSamples
	optBlockRows
	optSplit
)

// optionNames are the options' exported names, for errors.
var optionNames = map[optionSet]string{
	optProgress: "WithProgress", optSeed: "WithSeed",
	optExcludeBOS: "ExcludeBOS", optExcludeCurrent: "ExcludeCurrentToken", optErrorMeasure: "WithErrorMeasure", optOnlyHeads: "OnlyHeads",
	optSeqLen: "SeqLen", optBatchSize: "BatchSize", optBOS: "BOS", optTokenRange: "TokenRange",
	optReference: "Reference", optMetric: "WithMetric", optCleanCache: "CleanCache",
	optAtPosition: "AtPosition", optTopK: "TopK", optPrependBOS: "PrependBOS", optAnswerSpace: "PrependSpaceToAnswer",
	optBaselineSamples: "BaselineSamples", optBlockRows: "BlockRows", optSplit: "SplitOver",
}

// String lists the names of the options in s, or says there are none.
func (s optionSet) String() string {
	var names []string
	for bit := optionSet(1); bit != 0 && bit <= s; bit <<= 1 {
		if s&bit != 0 {
			names = append(names, optionNames[bit])
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

type options struct {
	given optionSet // the options applied, whether read or not

	progress io.Writer
	seed     uint64

	// head detection
	excludeBOS, excludeCurrent bool
	errorMeasure               ErrorMeasure
	heads                      []HeadID

	// repeated tokens
	seqLen, batch int
	bos           int64
	hasBOS        bool
	lo, hi        int64

	// ablation
	reference *gotch.Tensor
	metric    Metric

	// patching
	cleanCache *hookedmodel.ActivationCache

	// sweeps split over processes
	group Group

	// logit attribution, logit lens and test prompt
	pos     int
	topK    int
	topKSet bool

	// test prompt
	prependBOS  *bool
	answerSpace bool

	// composition
	baselineSamples int

	// circuit accuracy
	blockRows int
}

// option is the Option that records itself as opt and sets what it sets.
func option(opt optionSet, set func(*options)) Option {
	return func(o *options) {
		o.given |= opt
		set(o)
	}
}

// collect applies opts for the entry point entry, which reads the options
// in reads; an option it does not read is an error.
func collect(entry string, opts []Option, reads optionSet) (options, error) {
	o := options{errorMeasure: Mul, seqLen: 10, batch: 4, pos: -1, topK: 5, baselineSamples: 64, hi: -1, answerSpace: true, blockRows: 1024}
	for _, f := range opts {
		if f == nil {
			continue
		}
		f(&o)
		if extra := o.given &^ reads; extra != 0 {
			return options{}, fmt.Errorf("%s: option %v does not apply (it reads %v)", entry, extra, reads)
		}
	}
	return o, nil
}

// only is the options of opts in reads, for an entry point that hands its
// options on to another.
func only(opts []Option, reads optionSet) []Option {
	var kept []Option
	for _, f := range opts {
		if f == nil {
			continue
		}
		var o options
		f(&o)
		if o.given&^reads == 0 {
			kept = append(kept, f)
		}
	}
	return kept
}

// WithProgress draws a progress bar on w for sweeps (patching, ablation
// tables, circuit accuracy); nil, the default, draws none.
func WithProgress(w io.Writer) Option {
	return option(optProgress, func(o *options) { o.progress = w })
}

// WithSeed seeds whatever an analysis draws at random: repeated tokens,
// resample ablation's choice of rows, random baselines (default 0).
func WithSeed(seed uint64) Option { return option(optSeed, func(o *options) { o.seed = seed }) }

// ExcludeBOS leaves attention to the first position out of head detection
// scores (TransformerLens's exclude_bos).
func ExcludeBOS() Option { return option(optExcludeBOS, func(o *options) { o.excludeBOS = true }) }

// ExcludeCurrentToken leaves attention of each position to itself out of
// head detection scores (TransformerLens's exclude_current_token).
func ExcludeCurrentToken() Option {
	return option(optExcludeCurrent, func(o *options) { o.excludeCurrent = true })
}

// WithErrorMeasure sets how head detection compares a head's pattern with
// the detection pattern (default Mul).
func WithErrorMeasure(e ErrorMeasure) Option {
	return option(optErrorMeasure, func(o *options) { o.errorMeasure = e })
}

// OnlyHeads restricts head detection to these heads; the others score -1,
// as TransformerLens's heads argument does.
func OnlyHeads(heads ...HeadID) Option {
	return option(optOnlyHeads, func(o *options) { o.heads = append(o.heads, heads...) })
}

// SeqLen is the length of the random sequence that repeated-token batches
// repeat (default 10).
func SeqLen(n int) Option { return option(optSeqLen, func(o *options) { o.seqLen = n }) }

// BatchSize is the number of rows of a repeated-token batch (default 4).
func BatchSize(n int) Option { return option(optBatchSize, func(o *options) { o.batch = n }) }

// BOS sets the token that starts each repeated-token row (default the
// model tokenizer's BOS, else 0).
func BOS(id int64) Option { return option(optBOS, func(o *options) { o.bos, o.hasBOS = id, true }) }

// TokenRange draws repeated tokens uniformly from [lo, hi) (default the
// whole vocabulary, as TransformerLens and ARENA do).
func TokenRange(lo, hi int64) Option {
	return option(optTokenRange, func(o *options) { o.lo, o.hi = lo, hi })
}

// Reference gives the tokens whose activations mean ablation averages and
// resample ablation draws from ([batch pos]; the caller keeps them).
func Reference(tokens *gotch.Tensor) Option {
	return option(optReference, func(o *options) { o.reference = tokens })
}

// WithMetric makes an ablation table measure metric instead of the mean
// next-token loss.
func WithMetric(m Metric) Option { return option(optMetric, func(o *options) { o.metric = m }) }

// CleanCache reuses a clean run's cache for activation patching instead of
// running the clean input again; it must hold the activations the sweep
// patches. The caller keeps and frees it.
func CleanCache(c *hookedmodel.ActivationCache) Option {
	return option(optCleanCache, func(o *options) { o.cleanCache = c })
}

// AtPosition sets the position logit attribution explains (default -1, the
// last; negative values count from the end).
func AtPosition(p int) Option { return option(optAtPosition, func(o *options) { o.pos = p }) }

// TopK sets how many top tokens the logit lens lists per layer (default
// 5), TestPrompt per answer token (default 10, as test_prompt's) and
// CircuitAccuracy counts as a hit (default 1).
func TopK(k int) Option { return option(optTopK, func(o *options) { o.topK, o.topKSet = k, true }) }

// PrependBOS overrides the model's default_prepend_bos when TestPrompt
// tokenizes its prompt (test_prompt's prepend_bos).
func PrependBOS(on bool) Option {
	return option(optPrependBOS, func(o *options) { o.prependBOS = &on })
}

// PrependSpaceToAnswer sets whether TestPrompt puts a space before an
// answer that does not start with one (default true, as test_prompt's
// prepend_space_to_answer).
func PrependSpaceToAnswer(on bool) Option {
	return option(optAnswerSpace, func(o *options) { o.answerSpace = on })
}

// BaselineSamples sets how many random head pairs the composition-score
// baseline averages (default 64).
func BaselineSamples(n int) Option {
	return option(optBaselineSamples, func(o *options) { o.baselineSamples = n })
}

// BlockRows sets how many rows of a circuit CircuitAccuracy computes at
// once (default 1024): its memory grows with their number times the
// circuit's columns.
func BlockRows(n int) Option { return option(optBlockRows, func(o *options) { o.blockRows = n }) }

// bar is a progress bar that does nothing without a writer.
type bar struct{ pb *progressbar.ProgressBar }

func newBar(o *options, total int, what string) bar {
	if o.progress == nil || total <= 0 {
		return bar{}
	}
	w := o.progress
	return bar{progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetSpinnerChangeInterval(0),
		progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(w, "\n") }),
	)}
}

func (b bar) add() {
	if b.pb != nil {
		_ = b.pb.Add(1)
	}
}

// end completes the bar, or leaves it where it stopped when ok is false.
func (b bar) end(ok bool) {
	switch {
	case b.pb == nil:
	case ok:
		_ = b.pb.Finish()
	default:
		_ = b.pb.Exit()
	}
}
