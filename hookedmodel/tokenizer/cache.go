package tokenizer

import (
	"strings"
	"sync"
)

const (
	cacheWords   = 1 << 14 // entries before the cache starts afresh
	cacheWordLen = 64      // bytes; longer words are rare and not worth keeping
)

// wordCache remembers the ids of words already merged: ordinary text repeats
// a few thousand words, and merging dominates the cost of encoding.
type wordCache struct {
	mu sync.RWMutex
	m  map[string][]int
}

func (c *wordCache) get(word string) ([]int, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ids, ok := c.m[word]
	return ids, ok
}

// put stores a copy of ids; word is cloned so the map does not pin the text
// it was cut from.
func (c *wordCache) put(word string, ids []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= cacheWords {
		c.m = make(map[string][]int)
	}
	c.m[strings.Clone(word)] = append([]int(nil), ids...)
}
