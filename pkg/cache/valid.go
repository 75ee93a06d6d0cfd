package cache

// maxJSONDepth is the deepest nesting encoding/json accepts; validJSON refuses
// deeper input as it does.
const maxJSONDepth = 10000

// validJSON reports whether b is one JSON value (RFC 8259) with optional white space
// around it, exactly as encoding/json.Valid does (FuzzValidJSON checks it against
// that): string contents are not checked for valid UTF-8, and nesting deeper than
// 10,000 is refused. It is a recursive descent over the bytes, several times faster
// than encoding/json's scanner, which calls a step function per byte.
func validJSON(b []byte) bool {
	v := validator{b: b}
	v.space()
	if !v.value() {
		return false
	}
	v.space()
	return v.i == len(b)
}

type validator struct {
	b     []byte
	i     int
	depth int
}

func (v *validator) space() {
	for v.i < len(v.b) {
		switch v.b[v.i] {
		case ' ', '\t', '\n', '\r':
			v.i++
		default:
			return
		}
	}
}

// next returns the byte at the cursor, or 0 at the end (0 is never valid there).
func (v *validator) next() byte {
	if v.i < len(v.b) {
		return v.b[v.i]
	}
	return 0
}

func (v *validator) value() bool {
	switch c := v.next(); {
	case c == '"':
		return v.str()
	case c == '{':
		return v.object()
	case c == '[':
		return v.array()
	case c == '-' || '0' <= c && c <= '9':
		return v.number()
	case c == 't':
		return v.literal("true")
	case c == 'f':
		return v.literal("false")
	case c == 'n':
		return v.literal("null")
	}
	return false
}

func (v *validator) literal(word string) bool {
	if len(v.b)-v.i < len(word) || string(v.b[v.i:v.i+len(word)]) != word {
		return false
	}
	v.i += len(word)
	return true
}

func (v *validator) object() bool { return v.container('}', v.member) }

func (v *validator) array() bool { return v.container(']', v.value) }

// member checks one `"name": value` of an object.
func (v *validator) member() bool {
	if v.next() != '"' || !v.str() {
		return false
	}
	v.space()
	if v.next() != ':' {
		return false
	}
	v.i++
	v.space()
	return v.value()
}

// container checks the object or array whose opening bracket is at the cursor: its
// elements, each checked by elem, separated by commas, up to the closing byte end. It
// refuses nesting deeper than maxJSONDepth.
func (v *validator) container(end byte, elem func() bool) bool {
	v.i++ // the opening bracket
	v.depth++
	if v.depth > maxJSONDepth {
		return false
	}
	v.space()
	if v.next() == end {
		v.i++
		v.depth--
		return true
	}
	for {
		if !elem() {
			return false
		}
		v.space()
		switch v.next() {
		case ',':
			v.i++
			v.space()
		case end:
			v.i++
			v.depth--
			return true
		default:
			return false
		}
	}
}

// str checks the string whose opening quote is at the cursor and moves past its
// closing quote.
func (v *validator) str() bool {
	b := v.b
	i := v.i + 1
	for i < len(b) {
		// Most bytes need no decision: skip them in a tight loop.
		for i < len(b) && plainStringByte[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			v.i = i + 1
			return true
		case c == '\\':
			if i+1 >= len(b) {
				return false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return false
				}
				i += 6
			default:
				return false
			}
		case c < 0x20:
			return false
		default:
			i++
		}
	}
	return false
}

// plainStringByte marks the bytes that stand for themselves inside a string: all but
// the quote, the backslash and control characters.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func (v *validator) digits() bool {
	start := v.i
	for v.i < len(v.b) && '0' <= v.b[v.i] && v.b[v.i] <= '9' {
		v.i++
	}
	return v.i > start
}

// number checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (v *validator) number() bool {
	if v.next() == '-' {
		v.i++
	}
	switch c := v.next(); {
	case c == '0':
		v.i++
	case '1' <= c && c <= '9':
		v.digits()
	default:
		return false
	}
	if v.next() == '.' {
		v.i++
		if !v.digits() {
			return false
		}
	}
	if c := v.next(); c == 'e' || c == 'E' {
		v.i++
		if c := v.next(); c == '+' || c == '-' {
			v.i++
		}
		if !v.digits() {
			return false
		}
	}
	return true
}
