package tokenizer

import (
	"strings"
	"testing"
)

// english is ordinary prose: the golden "prose/" texts, repeated to 64 KiB.
func english(b *testing.B) string {
	var sb strings.Builder
	for sb.Len() < 64<<10 {
		for _, c := range readGolden(b).Encode {
			if strings.HasPrefix(c.Name, "prose/") {
				sb.WriteString(c.Text)
				sb.WriteString("\n")
			}
		}
	}
	return sb.String()
}

func BenchmarkEncodeEnglish(b *testing.B) {
	text := english(b)
	tk := GPT2()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tk.Encode(text)
	}
}

// BenchmarkEncodeEnglishColdCache starts each run with an empty word cache,
// which the repetitive text warms within the run.
func BenchmarkEncodeEnglishColdCache(b *testing.B) {
	text := english(b)
	tk := GPT2()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tk.model.cache.reset()
		tk.Encode(text)
	}
}

func BenchmarkEncodePathological(b *testing.B) {
	for name, text := range pathological() {
		b.Run(name, func(b *testing.B) {
			tk := GPT2()
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				tk.Encode(text)
			}
		})
	}
}

func BenchmarkDecodeEnglish(b *testing.B) {
	text := english(b)
	tk := GPT2()
	ids := tk.Encode(text)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tk.Decode(ids)
	}
}
