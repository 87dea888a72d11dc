// Package auth decides who a request acts for: the subject of a signed JWT.
// Parsing and signature checks are golang-jwt's; this package only chooses
// the key and the algorithms it accepts.
package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Verifier checks bearer tokens signed with one key.
type Verifier struct {
	key     any
	methods []string
}

// New returns the verifier for an HS256 secret or an RSA or EC public key
// in a PEM file, or nil when neither is set (the API is open).
func New(secret, publicKeyFile string) (*Verifier, error) {
	switch {
	case secret != "" && publicKeyFile != "":
		return nil, errors.New("auth: a secret or a public key, not both")
	case secret != "":
		return &Verifier{key: []byte(secret), methods: []string{jwt.SigningMethodHS256.Alg()}}, nil
	case publicKeyFile != "":
		pem, err := os.ReadFile(publicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth: read public key: %w", err)
		}
		if k, err := jwt.ParseRSAPublicKeyFromPEM(pem); err == nil {
			return &Verifier{key: k, methods: []string{jwt.SigningMethodRS256.Alg()}}, nil
		}
		k, err := jwt.ParseECPublicKeyFromPEM(pem)
		if err != nil {
			return nil, fmt.Errorf("auth: %s holds neither an RSA nor an EC public key in PEM: %w", publicKeyFile, err)
		}
		if k.Curve.Params().Name != "P-256" {
			return nil, fmt.Errorf("auth: EC key on %s; ES256 needs P-256", k.Curve.Params().Name)
		}
		return &Verifier{key: k, methods: []string{jwt.SigningMethodES256.Alg()}}, nil
	}
	return nil, nil
}

// leeway absorbs clock skew between the token's issuer and this server.
const leeway = 30 * time.Second

// Subject returns the token's sub once its signature, algorithm, expiry
// (required: a token without one would be valid forever) and nbf hold.
func (v *Verifier) Subject(token string) (string, error) {
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return v.key, nil },
		jwt.WithValidMethods(v.methods), jwt.WithExpirationRequired(), jwt.WithLeeway(leeway))
	if err != nil {
		return "", err
	}
	if claims.Subject == "" {
		return "", errors.New("token has no sub")
	}
	if err := checkRawClaims(token); err != nil {
		return "", err
	}
	return claims.Subject, nil
}

// checkRawClaims refuses what encoding/json takes silently on the way to
// RegisteredClaims: a time given as a string ("exp":"1767225600", which
// json.Number accepts; RFC 7519 2 makes a NumericDate a JSON number), and
// a sub that is not valid UTF-8 (raw bytes, or an escaped lone surrogate
// such as "\ud800"), which decodes to U+FFFD, so that "\ud800" and
// "\udfff" would be one user. The signature has been checked already.
func checkRawClaims(token string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("token is malformed") // not reached: parsed above
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("token payload: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil {
		return fmt.Errorf("token payload: %w", err)
	}
	for _, name := range []string{"exp", "nbf", "iat"} {
		if v, ok := raw[name]; ok && (len(v) == 0 || v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
			return fmt.Errorf("token's %s must be a number of seconds (RFC 7519 NumericDate), got %s", name, v)
		}
	}
	if sub := raw["sub"]; !utf8.Valid(sub) || loneSurrogate(sub) {
		return errors.New("token's sub must be valid UTF-8 (no lone surrogate escapes)")
	}
	return nil
}

// loneSurrogate reports a \uD800-\uDFFF escape in a JSON string that is
// not half of a pair: it stands for no character.
func loneSurrogate(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			continue
		}
		if s[i+1] != 'u' {
			i++ // an escaped character, \\ included
			continue
		}
		r, ok := hex4(s, i+2)
		if !ok {
			return false // not a JSON string encoding/json accepted
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true // a low half with no high half before it
		case r >= 0xD800 && r <= 0xDBFF:
			low, ok := hex4(s, i+8)
			if i+7 >= len(s) || s[i+6] != '\\' || s[i+7] != 'u' || !ok || low < 0xDC00 || low > 0xDFFF {
				return true
			}
			i += 11
		default:
			i += 5
		}
	}
	return false
}

func hex4(s []byte, at int) (rune, bool) {
	if at+4 > len(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(s[at:at+4]), 16, 16)
	return rune(n), err == nil
}
