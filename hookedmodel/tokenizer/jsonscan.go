package tokenizer

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A tokenizer.json is mostly its vocabulary and merges (33 MB for Gemma 3),
// which encoding/json reads at a few MB/s through reflection. jsonScanner
// reads them directly and hands the small rest to encoding/json.
type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) errorf(format string, args ...any) error {
	return fmt.Errorf("byte %d: %s", s.i, fmt.Sprintf(format, args...))
}

func (s *jsonScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// expect skips white space and the byte c.
func (s *jsonScanner) expect(c byte) error {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != c {
		if s.i >= len(s.b) {
			return s.errorf("want %q, got the end", c)
		}
		return s.errorf("want %q, got %q", c, s.b[s.i])
	}
	s.i++
	return nil
}

// peek skips white space and returns the next byte, or 0 at the end.
func (s *jsonScanner) peek() byte {
	s.space()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// str reads a string.
func (s *jsonScanner) str() (string, error) {
	if err := s.expect('"'); err != nil {
		return "", err
	}
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			out := string(s.b[start:s.i])
			s.i++
			return out, nil
		case c == '\\':
			return s.escaped(start)
		case c < 0x20:
			return "", s.errorf("control byte %#02x in a string", c)
		default:
			s.i++
		}
	}
	return "", s.errorf("unterminated string")
}

// escaped reads the rest of a string that has escapes, from start.
func (s *jsonScanner) escaped(start int) (string, error) {
	buf := append([]byte(nil), s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if !utf8.Valid(buf) {
				return "", s.errorf("string is not UTF-8")
			}
			return string(buf), nil
		case c < 0x20:
			return "", s.errorf("control byte %#02x in a string", c)
		case c != '\\':
			buf = append(buf, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			break
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, err := s.hex4()
			if err != nil {
				return "", err
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					s.i += 2
					if r2, err = s.hex4(); err != nil {
						return "", err
					}
				}
				r = utf16.DecodeRune(r, r2) // U+FFFD if unpaired, as encoding/json
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", s.errorf("bad escape \\%c", e)
		}
	}
	return "", s.errorf("unterminated string")
}

func (s *jsonScanner) hex4() (rune, error) {
	if s.i+4 > len(s.b) {
		return 0, s.errorf("short \\u escape")
	}
	v, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 16)
	if err != nil {
		return 0, s.errorf("bad \\u escape %q", s.b[s.i:s.i+4])
	}
	s.i += 4
	return rune(v), nil
}

// int32 reads an integer that fits int32.
func (s *jsonScanner) int32() (int32, error) {
	s.space()
	start := s.i
	for s.i < len(s.b) && (s.b[s.i] == '-' || s.b[s.i] >= '0' && s.b[s.i] <= '9') {
		s.i++
	}
	v, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 32)
	if err != nil {
		s.i = start
		return 0, s.errorf("want an integer id")
	}
	return int32(v), nil
}

// skip passes over one value of any kind and returns its bytes, for
// encoding/json to read (which checks literals and numbers).
func (s *jsonScanner) skip() (json.RawMessage, error) {
	s.space()
	start := s.i
	var err error
	switch s.peek() {
	case '"':
		_, err = s.str()
	case '{':
		err = s.object(func(string) error { _, err := s.skip(); return err })
	case '[':
		err = s.array(func(int) error { _, err := s.skip(); return err })
	case 0:
		return nil, s.errorf("want a value, got the end")
	default:
		for s.i < len(s.b) && strings.IndexByte(",}] \t\n\r", s.b[s.i]) < 0 {
			s.i++
		}
	}
	return s.b[start:s.i], err
}

// object calls f with each key of an object, f reading the value.
func (s *jsonScanner) object(f func(key string) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := f(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.errorf("want ',' or '}' after the value of %q", key)
		}
	}
}

// array calls f for each element of an array, f reading it.
func (s *jsonScanner) array(f func(i int) error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for n := 0; ; n++ {
		if err := f(n); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.errorf("want ',' or ']' after element %d", n)
		}
	}
}

// rawObject reads an object into its keys' raw values.
func (s *jsonScanner) rawObject() (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	err := s.object(func(key string) error {
		v, err := s.skip()
		out[key] = v
		return err
	})
	return out, err
}

// end checks that nothing but white space follows.
func (s *jsonScanner) end() error {
	if s.peek() != 0 {
		return s.errorf("trailing %q", s.b[s.i])
	}
	return nil
}
