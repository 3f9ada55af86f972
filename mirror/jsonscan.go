package mirror

import (
	"fmt"

	"github.com/offkit/offkit/internal/errdef"
)

// MaxJSONDepth bounds the nesting of objects and arrays in a mirror file.
const MaxJSONDepth = 10000

// jsonScan checks that the bytes written to it are JSON (RFC 8259, as
// encoding/json.Valid judges it) while they stream by, in memory bounded
// by MaxJSONDepth, and remembers the string value of the top-level
// object's "generatedAt". With seq, the input is a sequence of values (JSON
// Lines); without, exactly one value. Call end after the last Write.
type jsonScan struct {
	seq    bool
	stack  []byte // '{' or '[' of each open container
	state  scanState
	lit    string // the rest of a literal being read
	key    bool   // the string being read is an object key
	off    int64
	values int
	err    error

	// Capture of the top-level "generatedAt".
	keyBuf   []byte
	keyOver  bool
	capture  bool // the value being read is the top-level generatedAt
	valBuf   []byte
	valOver  bool
	hasGen   bool
	genAt    string
	genValid bool
}

type scanState uint8

const (
	sValue    scanState = iota // a value is expected
	sArrFirst                  // after '[': a value or ']'
	sObjFirst                  // after '{': a key or '}'
	sObjKey                    // after ',' in an object: a key
	sColon                     // after a key
	sAfter                     // after a value
	sString                    // inside a string
	sEsc                       // after '\' in a string
	sU1                        // hex digits of \uXXXX
	sU2
	sU3
	sU4
	sLit   // inside true, false or null
	sNeg   // after '-'
	sZero  // after a leading 0
	sInt   // integer digits
	sDot   // after '.'
	sFrac  // fraction digits
	sE     // after 'e'
	sESign // after the exponent's sign
	sExp   // exponent digits
	sEnd   // after the single top-level value
)

const maxCapture = 64

func (s *jsonScan) fail(c byte, what string) error {
	s.err = fmt.Errorf("not JSON: byte %d (%q): %s: %w", s.off, c, what, errdef.ErrInvalid)
	return s.err
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *jsonScan) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	for i := 0; i < len(p); {
		c := p[i]
		switch s.state {
		case sString:
			// Fast path over plain string bytes.
			j := i
			for j < len(p) && p[j] != '"' && p[j] != '\\' && p[j] >= 0x20 {
				j++
			}
			s.keep(p[i:j])
			s.off += int64(j - i)
			i = j
			if i == len(p) {
				continue
			}
			c = p[i]
			switch {
			case c == '"':
				s.endString()
			case c == '\\':
				s.keep(p[i : i+1])
				s.state = sEsc
			default:
				return i, s.fail(c, "control character in a string")
			}
		case sEsc:
			switch c {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.state = sString
			case 'u':
				s.state = sU1
			default:
				return i, s.fail(c, "bad escape in a string")
			}
			s.keep(p[i : i+1])
		case sU1, sU2, sU3, sU4:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return i, s.fail(c, "bad \\u escape")
			}
			s.keep(p[i : i+1])
			if s.state == sU4 {
				s.state = sString
			} else {
				s.state++
			}
		case sLit:
			if c != s.lit[0] {
				return i, s.fail(c, "bad literal")
			}
			s.lit = s.lit[1:]
			if s.lit == "" {
				s.endValue()
			}
		case sNeg:
			switch {
			case c == '0':
				s.state = sZero
			case '1' <= c && c <= '9':
				s.state = sInt
			default:
				return i, s.fail(c, "bad number")
			}
		case sZero, sInt, sFrac, sExp:
			switch {
			case '0' <= c && c <= '9' && s.state != sZero:
			case c == '.' && (s.state == sZero || s.state == sInt):
				s.state = sDot
			case (c == 'e' || c == 'E') && s.state != sExp:
				s.state = sE
			default:
				s.endValue()
				continue // c is read again after the number
			}
		case sDot:
			if !('0' <= c && c <= '9') {
				return i, s.fail(c, "bad number")
			}
			s.state = sFrac
		case sE:
			switch {
			case c == '+' || c == '-':
				s.state = sESign
			case '0' <= c && c <= '9':
				s.state = sExp
			default:
				return i, s.fail(c, "bad number")
			}
		case sESign:
			if !('0' <= c && c <= '9') {
				return i, s.fail(c, "bad number")
			}
			s.state = sExp
		default:
			if isWS(c) {
				break
			}
			if err := s.token(c); err != nil {
				return i, err
			}
		}
		i++
		s.off++
	}
	return len(p), nil
}

// token handles a byte outside strings, numbers and literals.
func (s *jsonScan) token(c byte) error {
	switch s.state {
	case sObjFirst, sObjKey:
		if c == '}' && s.state == sObjFirst {
			s.pop()
			return nil
		}
		if c != '"' {
			return s.fail(c, "an object key is expected")
		}
		s.key = true
		s.keyBuf, s.keyOver = s.keyBuf[:0], false
		s.state = sString
		return nil
	case sColon:
		if c != ':' {
			return s.fail(c, "':' is expected")
		}
		s.state = sValue
		return nil
	case sAfter:
		if len(s.stack) == 0 {
			if s.seq {
				s.state = sValue
				return s.token(c)
			}
			return s.fail(c, "data after the value")
		}
		top := s.stack[len(s.stack)-1]
		switch {
		case c == ',' && top == '{':
			s.state = sObjKey
		case c == ',' && top == '[':
			s.state = sValue
		case c == '}' && top == '{', c == ']' && top == '[':
			s.pop()
		default:
			return s.fail(c, "',' or the end of the container is expected")
		}
		return nil
	case sEnd:
		return s.fail(c, "data after the value")
	case sArrFirst:
		if c == ']' {
			s.pop()
			return nil
		}
	}
	// A value.
	s.capture = len(s.stack) == 1 && s.stack[0] == '{' && !s.keyOver && string(s.keyBuf) == "generatedAt"
	if s.capture && c != '"' {
		s.hasGen, s.genValid = true, false
	}
	switch {
	case c == '{' || c == '[':
		s.capture = false
		if len(s.stack) >= MaxJSONDepth {
			return s.fail(c, fmt.Sprintf("nested deeper than %d", MaxJSONDepth))
		}
		s.stack = append(s.stack, c)
		s.keyBuf = s.keyBuf[:0]
		if c == '{' {
			s.state = sObjFirst
		} else {
			s.state = sArrFirst
		}
	case c == '"':
		s.valBuf, s.valOver = s.valBuf[:0], false
		s.state = sString
	case c == 't':
		s.lit, s.state = "rue", sLit
	case c == 'f':
		s.lit, s.state = "alse", sLit
	case c == 'n':
		s.lit, s.state = "ull", sLit
	case c == '-':
		s.state = sNeg
	case c == '0':
		s.state = sZero
	case '1' <= c && c <= '9':
		s.state = sInt
	default:
		return s.fail(c, "a value is expected")
	}
	return nil
}

// keep remembers string bytes that may be the top-level generatedAt key or
// its value.
func (s *jsonScan) keep(b []byte) {
	switch {
	case s.key && len(s.stack) == 1:
		if len(s.keyBuf)+len(b) > maxCapture {
			s.keyOver = true
			return
		}
		s.keyBuf = append(s.keyBuf, b...)
	case !s.key && s.capture:
		if len(s.valBuf)+len(b) > maxCapture {
			s.valOver = true
			return
		}
		s.valBuf = append(s.valBuf, b...)
	}
}

func (s *jsonScan) endString() {
	if s.key {
		s.key = false
		s.state = sColon
		return
	}
	if s.capture {
		s.hasGen = true
		s.genValid = !s.valOver
		s.genAt = string(s.valBuf)
	}
	s.endValue()
}

func (s *jsonScan) endValue() {
	s.capture = false
	if len(s.stack) == 0 {
		s.values++
		if !s.seq {
			s.state = sEnd
			return
		}
	}
	s.state = sAfter
}

func (s *jsonScan) pop() {
	s.stack = s.stack[:len(s.stack)-1]
	if len(s.stack) == 1 {
		s.keyBuf = s.keyBuf[:0]
	}
	s.endValue()
}

// end checks that the input ended after a whole value (or, with seq, a
// whole number of values).
func (s *jsonScan) end() error {
	if s.err != nil {
		return s.err
	}
	switch s.state {
	case sZero, sInt, sFrac, sExp:
		if len(s.stack) == 0 {
			s.endValue()
		}
	}
	switch {
	case s.state == sEnd, s.seq && len(s.stack) == 0 && (s.state == sAfter || s.state == sValue):
		return nil
	}
	s.err = fmt.Errorf("not JSON: unexpected end at byte %d: %w", s.off, errdef.ErrInvalid)
	return s.err
}

// generatedAt returns the top-level object's "generatedAt": present says
// whether there is one, ok whether it was a string of at most 64 bytes.
func (s *jsonScan) generatedAt() (v string, present, ok bool) {
	return s.genAt, s.hasGen, s.genValid
}
