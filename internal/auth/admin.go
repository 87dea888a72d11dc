package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// AdminTokens are the admin API's static bearer tokens (ADMIN_TOKEN), each
// with a name that the audit trail records as who acted.
type AdminTokens struct {
	names  []string
	hashes [][32]byte
}

// MinAdminTokenBytes keeps a token out of reach of guessing.
const MinAdminTokenBytes = 16

var tokenName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ParseAdminTokens reads entries of the form name:token (a bare token is
// named "admin").
func ParseAdminTokens(entries []string) (AdminTokens, error) {
	var t AdminTokens
	for i, e := range entries {
		name, token, found := strings.Cut(strings.TrimSpace(e), ":")
		if !found {
			name, token = "admin", name
		}
		switch {
		case !tokenName.MatchString(name):
			return AdminTokens{}, fmt.Errorf("ADMIN_TOKEN entry %d: the name before ':' must be 1 to 64 of A-Z a-z 0-9 . _ -", i+1)
		case len(token) < MinAdminTokenBytes:
			return AdminTokens{}, fmt.Errorf("ADMIN_TOKEN entry %d (%s): the token must be at least %d bytes", i+1, name, MinAdminTokenBytes)
		case slices.Contains(t.names, name):
			return AdminTokens{}, fmt.Errorf("ADMIN_TOKEN entry %d: the name %s is used twice", i+1, name)
		}
		t.names, t.hashes = append(t.names, name), append(t.hashes, sha256.Sum256([]byte(token)))
	}
	return t, nil
}

// Configured reports whether any token is set.
func (t AdminTokens) Configured() bool { return len(t.names) > 0 }

// Name returns the name of the token given, comparing in constant time
// with every token (hashes first, so that lengths leak nothing either).
func (t AdminTokens) Name(token string) (string, bool) {
	h := sha256.Sum256([]byte(token))
	found := -1
	for i := range t.hashes {
		if subtle.ConstantTimeCompare(h[:], t.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return t.names[found], true
}

// ErrNotAdmin: a valid token without the admin role.
var ErrNotAdmin = errors.New("token lacks the admin role")

// adminClaims adds the role claims an identity provider sets: "role" as a
// string or "roles" as a list.
type adminClaims struct {
	jwt.RegisteredClaims
	Role  string   `json:"role"`
	Roles []string `json:"roles"`
}

// AdminSubject returns the token's sub when the token is valid (as for
// Subject) and carries role, or ErrNotAdmin when it is valid without it.
func (v *Verifier) AdminSubject(token, role string) (string, error) {
	var claims adminClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return v.key, nil },
		jwt.WithValidMethods(v.methods), jwt.WithExpirationRequired(), jwt.WithLeeway(leeway))
	switch {
	case err != nil:
		return "", err
	case claims.Subject == "":
		return "", errors.New("token has no sub")
	case role == "" || (claims.Role != role && !slices.Contains(claims.Roles, role)):
		return "", ErrNotAdmin
	}
	return claims.Subject, nil
}
