package strictjson

import (
	"bytes"
	"encoding/json"
)

// MarshalLines encodes items as a JSON array with one element per line,
// so that a diff of two versions of a secret reads well. HTML characters
// are written as they are (a URL's & stays &, as an operator wrote it).
func MarshalLines[T any](items []T) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("[\n")
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for i, item := range items {
		b.WriteString("  ")
		if err := enc.Encode(item); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
		if i < len(items)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("]\n")
	return b.Bytes(), nil
}
