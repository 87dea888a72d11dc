package sale

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/flashsale/flashsale/internal/sale/store"
)

// A checkout code is "<sale id>.<22 base64url characters>", for example
// "12.TcBN4Yx1h4IjllaGlOrybw". The service makes the random part
// (newCode); CheckoutsDecide (queries/checkout.sql) puts the id of the sale
// it holds a unit in before it, since the sale is decided there; parseCode
// reads the sale back, so that every lookup of a code reads one partition
// of checkout_attempts.

// codeBytes of crypto/rand: 128 bits, unguessable.
const codeBytes = 16

// maxCodeBytes bounds what is taken for a code: far above a real one.
const maxCodeBytes = 128

// newCode returns the random part of a checkout code.
func newCode() (string, error) {
	b := make([]byte, codeBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate checkout code: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// parseCode validates code and returns it with the sale it names. A code
// that names no sale (no checkout issued it) gets sale 0, the id of no
// sale: it is then simply not found.
func parseCode(code string) (store.Code, error) {
	switch {
	case code == "":
		return store.Code{}, invalid("code is required")
	case len(code) > maxCodeBytes:
		return store.Code{}, invalid("code is too long")
	case !utf8.ValidString(code) || strings.IndexFunc(code, unicode.IsControl) >= 0:
		return store.Code{}, invalid("code must be printable text")
	}
	return store.Code{Sale: codeSale(code), Code: code}, nil
}

// codeSale is the sale id before the code's dot, or 0 when there is none.
func codeSale(code string) int64 {
	prefix, _, ok := strings.Cut(code, ".")
	if !ok || prefix == "" || prefix[0] == '0' || len(prefix) > 19 {
		return 0
	}
	for i := 0; i < len(prefix); i++ {
		if prefix[i] < '0' || prefix[i] > '9' {
			return 0
		}
	}
	id, err := strconv.ParseInt(prefix, 10, 64)
	if err != nil {
		return 0
	}
	return id
}
