// Package cursor makes and reads the positions that keyset pagination hands
// to clients. A cursor names the last row a page returned (its sort key and
// id), so that the next page seeks to it through an index instead of
// stepping over every row before it, which is what made deep offset pages
// slow. Cursors are opaque to clients and signed: a client can neither
// forge a position nor carry one from one listing, tenant, order or filter
// to another, where its sort key would mean something else.
package cursor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"

	"github.com/tenantry/tenantry"
)

// Position is where a walk through a listing stands.
type Position struct {
	// Key is the sort key of the last row returned, in the text form the
	// listing's store reads back (a timestamp, a case-folded filename, a
	// sequence number).
	Key string `json:"k"`
	// ID is the id of the last row returned; it orders rows whose sort keys
	// are equal.
	ID string `json:"i,omitempty"`
	// Page is the number of the page the cursor leads to.
	Page int `json:"p"`
	// Total is how many rows matched when the walk began: deeper pages
	// carry it instead of counting again.
	Total int64 `json:"t"`
}

// Scope binds a cursor to what it may continue: the listing, the tenant,
// and every parameter that decides which rows come in which order. A
// cursor made under one scope is refused under any other.
type Scope []string

// bytes writes each part after its length, so that no two scopes come out
// alike however their parts are cut.
func (s Scope) bytes() []byte {
	var b []byte
	for _, part := range s {
		b = binary.AppendUvarint(b, uint64(len(part)))
		b = append(b, part...)
	}
	return b
}

// ErrInvalid is what a cursor that was not made by this deployment for
// this listing gets: forged, edited, truncated, or made for another tenant,
// order or filter.
var ErrInvalid = tenantry.Errorf(tenantry.EBadRequest, //nolint:gochecknoglobals // immutable sentinel
	"Invalid cursor: use the next_cursor of the same listing, with the same sort and filters")

// macSize is the length of a cursor's signature: 128 bits, beyond guessing,
// and short enough to keep a cursor one line of a URL.
const macSize = 16

// version prefixes the payload so that a later format can tell old cursors
// apart and refuse them cleanly.
const version = 1

// Codec makes and reads cursors with one key. Every process of a deployment
// must use the same key, so that a client's next request may reach any of
// them.
type Codec struct {
	key []byte
}

// NewCodec returns a Codec whose key is derived from secret, so that no
// signature made with secret for another purpose is a valid cursor.
func NewCodec(secret []byte) *Codec {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("tenantry list cursors v1"))
	return &Codec{key: mac.Sum(nil)}
}

func (c *Codec) sign(scope Scope, payload []byte) []byte {
	mac := hmac.New(sha256.New, c.key)
	mac.Write(scope.bytes())
	mac.Write([]byte{0})
	mac.Write(payload)
	return mac.Sum(nil)[:macSize]
}

// Encode returns the cursor of p under scope.
func (c *Codec) Encode(scope Scope, p Position) string {
	body, _ := json.Marshal(p) // strings and integers only: cannot fail
	payload := append([]byte{version}, body...)
	return base64.RawURLEncoding.EncodeToString(append(payload, c.sign(scope, payload)...))
}

// Decode returns the position of cursor, made under scope, or ErrInvalid.
func (c *Codec) Decode(scope Scope, cursor string) (Position, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(raw) < 1+macSize+2 {
		return Position{}, ErrInvalid
	}
	payload, mac := raw[:len(raw)-macSize], raw[len(raw)-macSize:]
	if !hmac.Equal(mac, c.sign(scope, payload)) || payload[0] != version {
		return Position{}, ErrInvalid
	}
	var p Position
	if err := json.Unmarshal(payload[1:], &p); err != nil || p.Key == "" || p.Page < 2 || p.Total < 0 {
		return Position{}, ErrInvalid
	}
	return p, nil
}
