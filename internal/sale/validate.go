package sale

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidRequest marks input that can never succeed; the message after it
// says which rule it broke.
var ErrInvalidRequest = errors.New("invalid request")

func invalid(msg string) error { return fmt.Errorf("%w: %s", ErrInvalidRequest, msg) }

// MaxUserIDBytes is the checkout_attempts_user_id_length constraint's bound
// and the OpenAPI document's maxLength (TestLimitsAgree ties them).
const MaxUserIDBytes = 64

// ValidateUserID accepts 1 to 64 bytes of UTF-8 without control characters.
func ValidateUserID(userID string) error {
	switch {
	case userID == "":
		return invalid("user_id is required")
	case len(userID) > MaxUserIDBytes:
		return invalid(fmt.Sprintf("user_id must be at most %d bytes", MaxUserIDBytes))
	case !utf8.ValidString(userID):
		return invalid("user_id must be valid UTF-8")
	case strings.IndexFunc(userID, unicode.IsControl) >= 0:
		return invalid("user_id must not contain control characters")
	}
	return nil
}

// MaxIdempotencyKeyBytes is the idempotency_keys_key_valid constraint's
// bound and the OpenAPI document's maxLength (TestLimitsAgree ties them).
const MaxIdempotencyKeyBytes = 255

// ValidateIdempotencyKey accepts 1 to 255 printable ASCII characters, the
// form Stripe and the IETF draft use (a UUID fits).
func ValidateIdempotencyKey(key string) error {
	if key == "" || len(key) > MaxIdempotencyKeyBytes {
		return invalid(fmt.Sprintf("Idempotency-Key must be 1 to %d characters", MaxIdempotencyKeyBytes))
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return invalid("Idempotency-Key must be printable ASCII")
		}
	}
	return nil
}

// skuForm is the items_sku_format constraint: 1 to 64 characters a URL,
// a CSV cell and a shell all carry as they are.
var skuForm = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidateSKU accepts what items_sku_format accepts.
func ValidateSKU(sku string) error {
	if !skuForm.MatchString(sku) {
		return invalid("sku must be 1 to 64 of A-Z a-z 0-9 . _ -")
	}
	return nil
}
