package strictjson

import (
	"cmp"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// unknownField returns the first object key of data, in document order,
// that encoding/json's Decoder with DisallowUnknownFields refuses when it
// decodes data into a value of type t; nil if there is none. data must
// have passed Check.
//
// It walks data as encoding/json does: into struct fields by their JSON
// names (exact match first, then case-insensitive), map values, slice and
// array elements, through pointers; never into interfaces or types that
// decode themselves (UnmarshalJSON, UnmarshalText), nor into values
// encoding/json skips (the value of an unknown key, elements past the
// length of a Go array, a value of the wrong JSON type).
//
// Decode asks only after encoding/json refused the text with an error of
// no known type, so encoding/json stays the authority on whether a text is
// accepted; this walk only says which key, and where. One difference: if
// a type's UnmarshalJSON fails after an unknown key, encoding/json reports
// the UnmarshalJSON error and Decode the key, the first problem in the text.
func unknownField(data []byte, t reflect.Type) *Error {
	if t == nil {
		return nil
	}
	w := &walker{scanner{data: data}}
	return w.walk(t)
}

// walker reads a checked text with the scanner's primitives.
type walker struct{ scanner }

func (w *walker) walk(t reflect.Type) *Error {
	w.space()
	t = target(t)
	switch {
	case t == nil:
	case w.data[w.i] == '{' && (t.Kind() == reflect.Struct || t.Kind() == reflect.Map):
		return w.object(t)
	case w.data[w.i] == '[' && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		return w.array(t)
	}
	w.skip()
	return nil
}

// skip reads past one value; the text passed Check, so it cannot fail.
func (w *walker) skip() {
	if _, err := w.value(0); err != nil {
		panic("strictjson: a checked text failed to scan: " + err.Error())
	}
}

func (w *walker) object(t reflect.Type) *Error {
	var fields fieldSet
	if t.Kind() == reflect.Struct {
		fields = cachedFields(t)
	}
	w.i++ // {
	w.space()
	if w.data[w.i] == '}' {
		w.i++
		return nil
	}
	for {
		w.space()
		keyAt := w.i
		key, _, _ := w.key()
		var elem reflect.Type
		if t.Kind() == reflect.Map {
			elem = t.Elem()
		} else if elem = fields.lookup(key); elem == nil {
			return &Error{Kind: UnknownField, Offset: int64(keyAt), Msg: fmt.Sprintf("unknown field %q", key)}
		}
		w.space()
		w.i++ // :
		if err := w.walk(elem); err != nil {
			return err
		}
		w.space()
		w.i++ // , or }
		if w.data[w.i-1] == '}' {
			return nil
		}
	}
}

func (w *walker) array(t reflect.Type) *Error {
	w.i++ // [
	w.space()
	if w.data[w.i] == ']' {
		w.i++
		return nil
	}
	for n := 0; ; n++ {
		if t.Kind() == reflect.Array && n >= t.Len() {
			w.skip() // encoding/json discards what a Go array has no room for
		} else if err := w.walk(t.Elem()); err != nil {
			return err
		}
		w.space()
		w.i++ // , or ]
		if w.data[w.i-1] == ']' {
			return nil
		}
	}
}

// target is the type encoding/json fills for a value declared as t: t
// without its pointers, or nil where it does not look inside (a type
// that decodes itself, an interface). Like encoding/json's indirect, it
// looks for methods on the address of a named type, and on each pointer.
func target(t reflect.Type) reflect.Type {
	if t.Kind() != reflect.Pointer && t.Name() != "" {
		t = reflect.PointerTo(t)
	}
	for t.Kind() == reflect.Pointer {
		if t.Implements(unmarshalerType) || t.Implements(textUnmarshalerType) {
			return nil
		}
		t = t.Elem()
	}
	if t.Kind() == reflect.Interface {
		return nil
	}
	return t
}

// fieldSet is a struct's fields as encoding/json matches object keys to
// them: the type of each, by exact JSON name and by folded name.
type fieldSet struct {
	exact, folded map[string]reflect.Type
}

// lookup returns the type of the field that takes key, or nil.
func (f fieldSet) lookup(key string) reflect.Type {
	if t, ok := f.exact[key]; ok {
		return t
	}
	return f.folded[foldName(key)]
}

var fieldCache sync.Map // reflect.Type → fieldSet

func cachedFields(t reflect.Type) fieldSet {
	if f, ok := fieldCache.Load(t); ok {
		return f.(fieldSet)
	}
	f, _ := fieldCache.LoadOrStore(t, structFields(t))
	return f.(fieldSet)
}

// structFields lists the fields of struct t by the rules of encoding/json
// (typeFields in encode.go): exported fields and those promoted from
// embedded structs, named by their json tag or Go name, "-" left out, and
// of several fields with one name only the dominant one (the shallowest,
// then the tagged), none if that is ambiguous.
func structFields(t reflect.Type) fieldSet {
	type field struct {
		name   string
		tagged bool
		index  []int
	}
	type embedded struct {
		typ   reflect.Type
		index []int
	}
	var fields []field
	next := []embedded{{typ: t}}
	var count, nextCount map[reflect.Type]int
	visited := map[reflect.Type]bool{}
	for len(next) > 0 {
		current := next
		next = nil
		count, nextCount = nextCount, map[reflect.Type]int{}
		for _, e := range current {
			if visited[e.typ] {
				continue
			}
			visited[e.typ] = true
			for i := range e.typ.NumField() {
				sf := e.typ.Field(i)
				if sf.Anonymous {
					et := sf.Type
					if et.Kind() == reflect.Pointer {
						et = et.Elem()
					}
					if !sf.IsExported() && et.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, _, _ := strings.Cut(tag, ",")
				if !validTag(name) {
					name = ""
				}
				index := append(e.index[:len(e.index):len(e.index)], i)
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if name != "" || !sf.Anonymous || ft.Kind() != reflect.Struct {
					f := field{name: cmp.Or(name, sf.Name), tagged: name != "", index: index}
					fields = append(fields, f)
					if count[e.typ] > 1 {
						// The struct is embedded twice at this depth: a
						// second copy makes its fields ambiguous below.
						fields = append(fields, f)
					}
					continue
				}
				nextCount[ft]++
				if nextCount[ft] == 1 {
					next = append(next, embedded{ft, index})
				}
			}
		}
	}
	slices.SortFunc(fields, func(a, b field) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := cmp.Compare(len(a.index), len(b.index)); c != 0 {
			return c
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return +1
		}
		return slices.Compare(a.index, b.index)
	})
	var out []field
	for i := 0; i < len(fields); {
		j := i + 1
		for j < len(fields) && fields[j].name == fields[i].name {
			j++
		}
		// The first is dominant unless the second is as shallow and as
		// tagged: then Go's rules make the name ambiguous and it is dropped.
		if j-i == 1 || len(fields[i].index) != len(fields[i+1].index) || fields[i].tagged != fields[i+1].tagged {
			out = append(out, fields[i])
		}
		i = j
	}
	slices.SortFunc(out, func(a, b field) int { return slices.Compare(a.index, b.index) })
	set := fieldSet{exact: map[string]reflect.Type{}, folded: map[string]reflect.Type{}}
	for _, f := range out {
		ft := t
		for _, i := range f.index {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			ft = ft.Field(i).Type
		}
		set.exact[f.name] = ft
		if _, ok := set.folded[foldName(f.name)]; !ok {
			set.folded[foldName(f.name)] = ft // the first folded match wins
		}
	}
	return set
}

// validTag reports whether encoding/json takes s as a field name.
func validTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// foldName is encoding/json's case folding of names: ASCII to upper case,
// any other letter to the smallest rune of its fold set (so "K" and the
// Kelvin sign "K" match).
func foldName(s string) string {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			out = append(out, byte(r))
			continue
		}
		out = utf8.AppendRune(out, foldRune(r))
	}
	return string(out)
}

func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}
