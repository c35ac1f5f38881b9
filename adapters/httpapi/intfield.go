package httpapi

import (
	"errors"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/acme/postsvc/domain"
)

// Int is an integer member of a request body, decoded by the contract's rule: a JSON number
// is the right type however it is written, so one that is not a plain integer within int64
// (1.5, 1e2, 100.0, 99999999999999999999) decodes with Whole false, and the handler answers
// it 422 naming the field (IntField), as an ECG sample's is; any other JSON kind is the
// wrong type, 400. A pointer to Int is nil for an absent member; null is the wrong type too.
type Int struct {
	Value int64
	Whole bool
	text  string // the number as sent, when it is not Whole
}

// UnmarshalJSONFrom implements json v2's UnmarshalerFrom. It reads one value whatever it is,
// so that a syntax error later in the body is still found, and answered 400, first.
func (n *Int) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	kind := dec.PeekKind()
	raw, err := dec.ReadValue()
	if err != nil {
		return err
	}
	if kind != '0' {
		return errNotNumber
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	*n = Int{Value: v, Whole: err == nil}
	if !n.Whole {
		n.Value, n.text = 0, string(raw)
	}
	return nil
}

// MarshalJSONTo implements json v2's MarshalerTo: the number as it was decoded.
func (n Int) MarshalJSONTo(enc *jsontext.Encoder) error {
	if n.Whole {
		return enc.WriteToken(jsontext.Int(n.Value))
	}
	return enc.WriteValue(jsontext.Value(n.text))
}

// IntField returns n's value for the use case, or a validation error naming field when the
// number sent was not a plain integer in range; nil n (absent) gives nil.
func IntField(field string, n *Int) (*int, error) {
	if n == nil {
		return nil, nil
	}
	if !n.Whole || int64(int(n.Value)) != n.Value {
		return nil, invalidInt(field)
	}
	v := int(n.Value)
	return &v, nil
}

// errNotNumber is Int's refusal of a JSON value that is not a number: json v2 wraps it in a
// SemanticError naming the member, which bodyReadError answers 400 ("must be a number").
var errNotNumber = errors.New("not a JSON number")

func invalidInt(field string) error {
	return domain.Invalid(field, "must be a whole number, written without a fraction or an exponent")
}
