package validate

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"impo.com.uy/copetes/backend/shared/strictjson"
)

// readMessage reads e's data as e.DataAs(&m) does, but the document
// apart: encoding/json reads a message in two passes over all of it, the
// document's base64 included, and copies that base64 again to unquote it
// before decoding it: more work than validating the document. So the
// document's base64 is found in one walk of the text and decoded from
// where it is, and encoding/json reads only the rest (attributes, id,
// time).
// Whatever that cannot read as DataAs would (another encoding, a key that
// DataAs would match without regard to case, escapes in the base64, an
// error of any kind) is left to DataAs, which reads it, or says why not,
// in its own words.
func readMessage(e event.Event) (messagePublished, error) {
	if m, ok := readMessageFast(e); ok {
		return m, nil
	}
	var m messagePublished
	err := e.DataAs(&m)
	return m, err
}

// errUnusual ends a fast reading: DataAs must read the message.
var errUnusual = errors.New("not a message as Eventarc writes it")

func readMessageFast(e event.Event) (messagePublished, bool) {
	var m messagePublished
	text := e.Data()
	switch e.DataMediaType() {
	case "", "application/json", "text/json": // what DataAs reads as JSON
	default:
		return m, false
	}
	if e.SpecVersion() != event.CloudEventsVersionV1 || len(text) == 0 {
		return m, false
	}
	// The value of "data" in the object of "message", the text's object.
	var (
		depth   int
		pending string // the key the next value is of, at depth 1 and in the message
		message int    // the depth of the message's members, once in it
		data    strictjson.Token
		found   bool
	)
	err := strictjson.Walk(text, strictjson.Options{}, func(t strictjson.Token) error {
		switch t.Kind {
		case strictjson.Key:
			pending = ""
			if depth != 1 && depth != message {
				return nil
			}
			want := "message"
			if depth == message {
				want = "data"
			}
			// encoding/json matches keys without regard to case, and the
			// last of several wins: only the one exact key is read here.
			switch {
			case t.Escaped:
				return errUnusual
			case string(t.Raw) == want:
				pending = want
			case strings.EqualFold(string(t.Raw), want):
				return errUnusual
			}
			return nil
		case strictjson.EndObject, strictjson.EndArray:
			if depth--; depth < message {
				message = 0 // out of the message
			}
			return nil
		}
		key := pending
		pending = ""
		switch {
		case key == "message" && t.Kind == strictjson.BeginObject:
			message = depth + 1
		case key == "message", key == "data" && (t.Kind != strictjson.String || t.Escaped):
			return errUnusual
		case key == "data":
			data, found = t, true
		}
		if t.Kind == strictjson.BeginObject || t.Kind == strictjson.BeginArray {
			depth++
		}
		return nil
	})
	if err != nil || !found {
		return m, false
	}
	// The rest, with "data":"" for the document.
	rest := slices.Concat(text[:data.Offset], text[data.Offset+len(data.Raw):])
	if json.Unmarshal(rest, &m) != nil || m.Message == nil {
		return m, false
	}
	doc := make([]byte, base64.StdEncoding.DecodedLen(len(data.Raw)))
	n, err := base64.StdEncoding.Decode(doc, data.Raw)
	if err != nil {
		return m, false
	}
	m.Message.Data = doc[:n]
	return m, true
}
