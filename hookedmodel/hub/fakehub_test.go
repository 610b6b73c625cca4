package hub

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeFile is one file of a fake repository. LFS files are answered, as on
// huggingface.co, with a redirect to a CDN on another port and their sha256
// as X-Linked-Etag; the others come from the hub itself with their git sha1
// as ETag.
type fakeFile struct {
	data []byte
	lfs  bool
}

// fakeHub plays huggingface.co and its CDN on two loopback servers for one
// repository at one commit, and records what it was asked.
type fakeHub struct {
	repo   string
	commit string
	files  map[string]fakeFile
	token  string // when set, requests without "Bearer "+token are refused
	// oldName is a former name of repo, answered as huggingface.co answers
	// for a renamed repository: with a redirect on its own host.
	oldName string

	hub, cdn *httptest.Server

	mu          sync.Mutex
	requests    []string // "METHOD path" as the hub saw them
	hubAuth     []string // Authorization headers the hub saw
	cdnAuth     []string // Authorization headers the CDN saw (there should be none)
	ranges      []string // Range headers of the CDN's GETs, "" for none
	cdnGets     int
	cuts        int           // the CDN's next cuts GET answers break after a quarter of the file
	ignoreRange bool          // the CDN answers 200 with the whole file to a Range request
	corrupt     bool          // the hub and the CDN flip a bit of the files they send
	stall       chan struct{} // when set, the CDN sends a quarter, closes stall, and waits for the client to go
	// fault, when set, may answer a request in place of the fake (cdn says
	// which server got it); it reports whether it did.
	fault func(w http.ResponseWriter, r *http.Request, cdn bool) bool
}

func newFakeHub(t *testing.T, repo, commit string, files map[string]fakeFile) *fakeHub {
	t.Helper()
	f := &fakeHub{repo: repo, commit: commit, files: files}
	f.hub = httptest.NewServer(http.HandlerFunc(f.serveHub))
	f.cdn = httptest.NewServer(http.HandlerFunc(f.serveCDN))
	t.Cleanup(f.hub.Close)
	t.Cleanup(f.cdn.Close)
	return f
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// gitSHA1 is the object id git gives a blob, which the hub sends as the
// ETag of a non-LFS file.
func gitSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func (f fakeFile) etag() string {
	if f.lfs {
		return sha256Hex(f.data)
	}
	return gitSHA1(f.data)
}

func hubError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Error-Code", code)
	w.Header().Set("X-Error-Message", msg)
	http.Error(w, msg, status)
}

func (f *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	f.hubAuth = append(f.hubAuth, auth)
	corrupt := f.corrupt
	f.mu.Unlock()
	if f.fault != nil && f.fault(w, r, false) {
		return
	}

	repo, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/resolve/")
	rev, name, _ := strings.Cut(rest, "/")
	switch {
	case f.oldName != "" && repo == f.oldName:
		http.Redirect(w, r, "/"+f.repo+"/resolve/"+rest, http.StatusTemporaryRedirect)
		return
	case repo != f.repo:
		hubError(w, http.StatusNotFound, "RepoNotFound", "Repository Not Found")
		return
	case f.token != "" && auth == "":
		hubError(w, http.StatusUnauthorized, "GatedRepo", "Access to this model is restricted.")
		return
	case f.token != "" && auth != "Bearer "+f.token:
		hubError(w, http.StatusForbidden, "GatedRepo", "Access to this model is restricted.")
		return
	case rev != "main" && rev != f.commit:
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id")
		return
	}
	w.Header().Set("X-Repo-Commit", f.commit)
	file, ok := f.files[name]
	if !ok {
		hubError(w, http.StatusNotFound, "EntryNotFound", "Entry not found")
		return
	}
	if file.lfs {
		sum := file.etag()
		w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(file.data)))
		w.Header().Set("ETag", `W/"not-the-blob-name"`)
		http.Redirect(w, r, f.cdn.URL+"/blobs/"+sum, http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+file.etag()+`"`)
	data := file.data
	if corrupt {
		data = flipBit(data)
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

// flipBit returns a copy of b with one bit changed and the same length.
func flipBit(b []byte) []byte {
	b = bytes.Clone(b)
	b[len(b)/2] ^= 1
	return b
}

func (f *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	var data []byte
	for _, file := range f.files {
		if file.lfs && "/blobs/"+sha256Hex(file.data) == r.URL.Path {
			data = file.data
		}
	}
	if data == nil {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	f.cdnAuth = append(f.cdnAuth, r.Header.Get("Authorization"))
	f.ranges = append(f.ranges, r.Header.Get("Range"))
	f.cdnGets++
	cut := f.cuts > 0
	if cut {
		f.cuts--
	}
	stall := f.stall
	if f.ignoreRange {
		r.Header.Del("Range")
	}
	if f.corrupt {
		data = flipBit(data)
	}
	f.mu.Unlock()
	if f.fault != nil && f.fault(w, r, true) {
		return
	}

	if cut || stall != nil {
		w = &cutWriter{ResponseWriter: w, left: len(data) / 4, stall: stall, done: r.Context().Done()}
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// cutWriter passes on a response until left bytes of body are out, then
// breaks the connection; with stall set, it first waits for the client to
// hang up.
type cutWriter struct {
	http.ResponseWriter
	left  int
	stall chan struct{}
	done  <-chan struct{}
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.ResponseWriter.Write(p)
	c.left -= n
	if err != nil || c.left > 0 {
		return n, err
	}
	c.ResponseWriter.(http.Flusher).Flush()
	if c.stall != nil {
		close(c.stall)
		<-c.done
	}
	panic(http.ErrAbortHandler) // the server drops the connection
}

func (f *fakeHub) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}
