package serve

import "bytes"

// eventKind is the shape of an invocation payload, read from its top-level
// "version" member.
type eventKind int

const (
	// kindInvalid is a payload that is not a JSON object.
	kindInvalid eventKind = iota
	// kindREST is a REST API proxy event: no version. Its "path" never holds the
	// stage.
	kindREST
	// kindHTTPv1 is an HTTP API payload 1.0 event: the REST shape, but a named
	// stage is the first segment of "path".
	kindHTTPv1
	// kindHTTPv2 is an HTTP API payload 2.0 or function URL event.
	kindHTTPv2
)

// kindOf tells the event shapes apart without decoding: it walks the top level of
// the object (nested values are skipped by counting brackets outside strings) and
// stops at the "version" member, which API Gateway writes first. A "version" inside
// headers or query parameters is nested, so it cannot be mistaken for it. The walk
// does not validate the JSON; the decoder that follows does. It matches the member
// name byte for byte, as AWS writes it.
func kindOf(b []byte) eventKind {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return kindInvalid
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != '"' {
			return kindREST // "}" of an object without version, or malformed
		}
		end, ok := stringEnd(b, i)
		if !ok {
			return kindREST
		}
		name := b[i+1 : end]
		i = skipSpace(b, end+1)
		if i >= len(b) || b[i] != ':' {
			return kindREST
		}
		i = skipSpace(b, i+1)
		if string(name) == "version" {
			if i >= len(b) || b[i] != '"' {
				return kindREST
			}
			end, ok := stringEnd(b, i)
			if !ok {
				return kindREST
			}
			switch string(b[i+1 : end]) {
			case "2.0":
				return kindHTTPv2
			case "1.0":
				return kindHTTPv1
			}
			return kindREST
		}
		i, ok = valueEnd(b, i)
		if !ok {
			return kindREST
		}
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ',' {
			return kindREST
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index of the quote that closes the string opening at b[i].
func stringEnd(b []byte, i int) (int, bool) {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, false
		}
		j += k
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return j, true
		}
		j++
	}
}

// valueEnd returns the index just past the value starting at b[i].
func valueEnd(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		end, ok := stringEnd(b, i)
		return end + 1, ok
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, ok := stringEnd(b, i)
				if !ok {
					return 0, false
				}
				i = end
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return 0, false
	}
	// A number, true, false or null runs to the next delimiter.
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i, true
		}
		i++
	}
	return i, true
}

// stripStage removes a leading "/<stage>" segment from path, which API Gateway HTTP
// APIs add for any stage but $default.
func stripStage(path, stage string) string {
	if stage == "" || stage == "$default" || len(path) < 1+len(stage) || path[0] != '/' || path[1:1+len(stage)] != stage {
		return path
	}
	switch rest := path[1+len(stage):]; {
	case rest == "":
		return "/"
	case rest[0] == '/':
		return rest
	}
	return path
}
