// Package auth decides who a request acts for: the subject of a signed JWT.
// Parsing and signature checks are golang-jwt's; this package only chooses
// the key and the algorithms it accepts.
package auth

import (
	"errors"
	"fmt"
	"os"
	"time"

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
	return claims.Subject, nil
}
