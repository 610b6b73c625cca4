package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// benchDocs is the mixed corpus of the Hugging Face comparison, about 10 MB
// cut into documents of at most 8 KiB at line ends: English prose (Newton's
// Opticks, from Go's source tree), Go source code, French, Japanese,
// Chinese and Korean prose (golang.org/x/text's test data) and the golden
// corpus (emoji, scripts, whitespace). The same bytes go to Hugging Face's
// tokenizers by testdata/hf/bench.sh, which sets GOLENS_BENCH_CORPUS_OUT so
// that the first benchmark writes them out (a JSON array of strings).
var benchDocs = sync.OnceValues(func() ([]string, error) {
	goroot := runtime.GOROOT()
	read := func(path string) (string, error) {
		b, err := os.ReadFile(path)
		return string(b), err
	}
	english, err := read(filepath.Join(goroot, "src", "testdata", "Isaac.Newton-Opticks.txt"))
	if err != nil {
		return nil, err
	}
	code, err := goSource(filepath.Join(goroot, "src"), 4<<20)
	if err != nil {
		return nil, err
	}
	var other strings.Builder
	xtext, err := filepath.Glob(filepath.Join(modDir("golang.org/x/text"), "encoding", "testdata", "*-utf-8.txt"))
	if err != nil || len(xtext) == 0 {
		return nil, err
	}
	for _, f := range xtext {
		s, err := read(f)
		if err != nil {
			return nil, err
		}
		other.WriteString(s)
	}
	for _, c := range hfCorpus() {
		other.WriteString(c.Text)
		other.WriteString("\n")
	}
	var all strings.Builder
	for all.Len() < 10<<20 {
		all.WriteString(english)
		all.WriteString(code[:min(len(code), 1<<20)])
		code = code[min(len(code), 1<<20):]
		all.WriteString(other.String())
	}
	docs := cutDocs(all.String(), 8<<10)
	if out := os.Getenv("GOLENS_BENCH_CORPUS_OUT"); out != "" {
		b, err := json.Marshal(docs)
		if err == nil {
			err = os.WriteFile(out, b, 0o644)
		}
		if err != nil {
			return nil, err
		}
	}
	return docs, nil
})

// modDir returns the directory of a module this one requires.
func modDir(path string) string {
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, "go", "pkg", "mod")
	}
	dirs, _ := filepath.Glob(filepath.Join(cache, path+"@*"))
	slices.Sort(dirs)
	if len(dirs) == 0 {
		return ""
	}
	return dirs[len(dirs)-1]
}

// goSource returns up to n bytes of the .go files under dir, in path order.
func goSource(dir string, n int) (string, error) {
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || b.Len() >= n {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.Contains(path, "testdata") {
			s, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			b.Write(s)
		}
		return nil
	})
	return b.String(), err
}

// cutDocs cuts s into documents of at most size bytes, at line ends.
func cutDocs(s string, size int) []string {
	var docs []string
	for len(s) > 0 {
		end := min(len(s), size)
		if end < len(s) {
			if i := strings.LastIndexByte(s[:end], '\n'); i > 0 {
				end = i + 1
			}
		}
		docs = append(docs, s[:end])
		s = s[end:]
	}
	return docs
}

func readBenchDocs(b *testing.B) ([]string, int) {
	docs, err := benchDocs()
	if err != nil {
		b.Fatalf("bench corpus: %v", err)
	}
	n := 0
	for _, d := range docs {
		n += len(d)
	}
	return docs, n
}

// BenchmarkHFEncode encodes the mixed corpus on one goroutine, as
// Encode (add_special_tokens=False), with each tokenizer; bench.sh times
// Hugging Face's tokenizers on the same documents.
func BenchmarkHFEncode(b *testing.B) {
	docs, size := readBenchDocs(b)
	for _, name := range append(slices.Clone(hfNames), "gpt2-embedded") {
		b.Run(name, func(b *testing.B) {
			tk := GPT2()
			if name != "gpt2-embedded" {
				tk = loadHF(b, name)
			}
			b.SetBytes(int64(size))
			tokens := 0
			for b.Loop() {
				tokens = 0
				for _, d := range docs {
					tokens += len(tk.Encode(d))
				}
			}
			b.ReportMetric(float64(tokens), "tokens/op")
			b.ReportMetric(float64(tokens)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkHFEncodeBatch is BenchmarkHFEncode with EncodeBatch on every core.
func BenchmarkHFEncodeBatch(b *testing.B) {
	docs, size := readBenchDocs(b)
	for _, name := range []string{"llama3", "gemma3"} {
		b.Run(name, func(b *testing.B) {
			tk := loadHF(b, name)
			b.SetBytes(int64(size))
			for b.Loop() {
				tk.EncodeBatch(docs, false)
			}
		})
	}
}

// BenchmarkHFLoad parses tokenizer.json files; Gemma 3's is 33 MB.
func BenchmarkHFLoad(b *testing.B) {
	for _, name := range []string{"llama3", "gemma3"} {
		b.Run(name, func(b *testing.B) {
			dir := filepath.Dir(hfCached(b, name, "tokenizer.json"))
			for b.Loop() {
				if _, err := Load(dir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
